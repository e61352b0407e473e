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
)

const usage = `Usage: backchannel <command> [arguments]

Commands:
    version    print the version of this build

backchannel is being built one layer at a time: the network servers, the
client and the demo arrive as subcommands with the issues that build them.
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
