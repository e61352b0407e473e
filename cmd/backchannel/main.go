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
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage())
		return 2
	}
	if code, done := checkSubcommand(args, stderr); done {
		return code
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
	case "retry":
		return runRetry(args[1:], stdout, stderr)
	case "cancel":
		return runCancel(args[1:], stdout, stderr)
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
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "officer":
		return runOfficer(args[1:], stdout, stderr)
	case "drafts":
		return runDrafts(args[1:], stdout, stderr)
	case "draft":
		return runDraft(args[1:], stdout, stderr)
	case "approve":
		return runApprove(args[1:], stdout, stderr)
	case "reject":
		return runReject(args[1:], stdout, stderr)
	case "dual-control":
		return runDualControl(args[1:], stdout, stderr)
	case "version":
		if err := newFlags("version", stderr).Parse(args[1:]); err != nil {
			return 2
		}
		fmt.Fprintln(stdout, "backchannel", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage())
		return 0
	default:
		fmt.Fprintf(stderr, "backchannel: unknown command %q\n\n%s", args[0], topUsage())
		return 2
	}
}

// checkSubcommand answers a command line that names a command with
// subcommands ("contact") but none of them, or one it does not have: with
// the subcommands' usage lines.
func checkSubcommand(args []string, stderr io.Writer) (code int, done bool) {
	if _, ok := lookupCommand(args[0]); ok || len(commandsUnder(args[0])) == 0 {
		return 0, false
	}
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		if _, ok := lookupCommand(args[0] + " " + args[1]); ok {
			return 0, false
		}
		fmt.Fprintf(stderr, "backchannel: %s has no command %q\n", args[0], args[1])
	}
	return usageOf(args[0], stderr), true
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
