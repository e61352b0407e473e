// Command backchannel is the one binary of backchannel: the servers (mix
// nodes, providers, directory authorities), the client and the demo are its
// subcommands. Each subcommand parses its flags and config, builds its
// components from the internal packages and runs them; no logic lives here.
//
// Output rules: errors go to standard error prefixed "backchannel: ", in
// lowercase; results go to standard output.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// usage is the top-level help; the commands that talk to the client
// daemon come from control.Commands, as their own help does.
var usage = `Usage: backchannel <command> [arguments]

Commands:
    demo                  run a whole network on loopback and send messages through it
    testnet               write keys, configs and a signed document for a network
    loadgen               run a local network of processes under simulated clients and measure it
    authority run         run a directory authority: --config FILE
    authority keys        make a new authority's key: --dir DIR (prints its public key)
    node run              run a mix node or provider: --config FILE
    node keys             make a new node's keys: --dir DIR (prints its identity key)
    provider add-user     add a user to a provider's account table

Client:
    init                  make a new identity at a provider: --network FILE --provider NAME
    client run            run the client daemon (keeps the schedule; the commands below talk to it)
    ui                    run the client daemon with its web interface on 127.0.0.1 (unlock it in the browser)
    restore FILE          make a new state directory from a backup
    receipt verify        check a signed conveyance receipt against the intermediary's card

Commands to the client daemon:
` + control.UsageLines() + `
Other:
    version               print the version of this build

Run "backchannel <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "node":
		return runNode(args[1:], stdout, stderr)
	case "authority":
		return runAuthority(args[1:], stdout, stderr)
	case "provider":
		return runProvider(args[1:], stdout, stderr)
	case "loadgen":
		return runLoadgen(args[1:], stdout, stderr)
	case "testnet":
		return runTestnet(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "init":
		return runInit(args[1:], stdout, stderr)
	case "ui":
		return runUI(args[1:], stdout, stderr)
	case "client":
		return runClient(args[1:], stdout, stderr)
	case "card":
		return runCard(args[1:], stdout, stderr)
	case "contact":
		return runContact(args[1:], stdout, stderr)
	case "send":
		return runSend(args[1:], stdout, stderr)
	case "inbox":
		return runInbox(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "backup":
		return runBackup(args[1:], stdout, stderr)
	case "restore":
		return runRestore(args[1:], stdout, stderr)
	case "wipe":
		return runWipe(args[1:], stdout, stderr)
	case "introduce":
		return runIntroduce(args[1:], stdout, stderr)
	case "intro":
		return runIntro(args[1:], stdout, stderr)
	case "convey":
		return runConvey(args[1:], stdout, stderr)
	case "receipt":
		return runReceipt(args[1:], stdout, stderr)
	case "desk":
		return runDesk(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "backchannel", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "backchannel: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// buildVersion may be set at link time with -ldflags "-X main.buildVersion=v1.2.3".
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
