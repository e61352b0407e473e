package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// command is one command line of the binary: what the top-level usage
// lists and what "-h" prints come from here, and nowhere else.
type command struct {
	// cli is the command's words ("node run"); args what follows them,
	// required flags first ("--config FILE"); summary what it does.
	cli, args, summary string
	// group is the heading the top-level usage lists it under.
	group string
}

// The top-level usage's groups, in its order.
const (
	groupNetwork = "Network"
	groupClient  = "Client"
	groupDaemon  = "Commands to the client daemon"
	groupOther   = "Other"
)

// usageLine is the command's usage line, as -h prints it.
func (c command) usageLine() string {
	return strings.TrimSpace("backchannel " + c.cli + " " + c.args)
}

// localCommands are the commands that do not talk to a client daemon:
// servers, tools, and the client commands that make a state or run the
// daemon.
var localCommands = []command{
	{cli: "demo", summary: "run a whole network on loopback and send messages through it", group: groupNetwork},
	{cli: "testnet", args: "[--dir DIR]", summary: "write keys, configs and a signed document for a network", group: groupNetwork},
	{cli: "loadgen", summary: "run a local network of processes under simulated clients and measure it", group: groupNetwork},
	{cli: "authority run", args: "--config FILE", summary: "run a directory authority", group: groupNetwork},
	{cli: "authority keys", args: "--dir DIR", summary: "make a new authority's key (prints its public key)", group: groupNetwork},
	{cli: "node run", args: "--config FILE", summary: "run a mix node or provider", group: groupNetwork},
	{cli: "node keys", args: "--dir DIR", summary: "make a new node's keys (prints its identity key)", group: groupNetwork},
	{cli: "provider add-user", args: "--accounts FILE --link-key HEX --mailbox HEX", summary: "add a user to a provider's account table", group: groupNetwork},

	{cli: "init", args: "--network FILE --provider NAME [--officer NAME] [--dir DIR]", summary: "make a new identity at a provider", group: groupClient},
	{cli: "client run", args: "[--dir DIR]", summary: "run the client daemon (keeps the schedule; the commands below talk to it)", group: groupClient},
	{cli: "ui", args: "[--dir DIR] [--listen 127.0.0.1:PORT] [--lock-after 5m]", summary: "run the client daemon with its web interface on 127.0.0.1 (unlock it in the browser)", group: groupClient},
	{cli: "restore", args: "[--dir DIR] FILE", summary: "make a new state directory from a backup", group: groupClient},
	{cli: "receipt verify", args: "--card INTERMEDIARY-CARD FILE", summary: "check a signed conveyance receipt against the intermediary's card", group: groupClient},

	{cli: "version", summary: "print the version of this build", group: groupOther},
}

// commands is every command line of the binary: the local ones and, under
// groupDaemon, one per command line of control.Commands ("intro
// accept|decline" is two).
func commands() []command {
	all := make([]command, 0, len(localCommands)+len(control.Commands))
	var daemon []command
	for _, c := range control.Commands {
		if c.CLI == "" {
			continue
		}
		head, alternatives, _ := strings.Cut(c.CLI, " ")
		for _, sub := range strings.Split(alternatives, "|") {
			daemon = append(daemon, command{cli: strings.TrimSpace(head + " " + sub), args: c.Args, summary: c.Summary, group: groupDaemon})
		}
	}
	for _, c := range localCommands {
		if c.group == groupOther {
			all = append(all, daemon...)
		}
		all = append(all, c)
	}
	return all
}

// lookupCommand finds a command by its words.
func lookupCommand(cli string) (command, bool) {
	for _, c := range commands() {
		if c.cli == cli {
			return c, true
		}
	}
	return command{}, false
}

// commandsUnder lists the command lines that start with word ("contact":
// contact add, contact list…), for a command given without its second word.
func commandsUnder(word string) []command {
	var under []command
	for _, c := range commands() {
		if strings.HasPrefix(c.cli, word+" ") {
			under = append(under, c)
		}
	}
	return under
}

// topUsage is the top-level help, by group, from the table.
func topUsage() string {
	var b strings.Builder
	b.WriteString("Usage: backchannel <command> [arguments]\n")
	group := ""
	for _, c := range commands() {
		if c.group != group {
			group = c.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		line := strings.TrimSpace(c.cli + " " + c.args)
		if len(line) > 21 {
			fmt.Fprintf(&b, "    %s\n    %-21s %s\n", line, "", c.summary)
			continue
		}
		fmt.Fprintf(&b, "    %-21s %s\n", line, c.summary)
	}
	b.WriteString("\nThe client's commands take --dir DIR, its state directory ($BACKCHANNEL_DIR or ~/.backchannel).\nRun \"backchannel <command> -h\" for a command's flags.\n")
	return b.String()
}

// newFlags makes the flag set of the command cli, whose -h prints the
// table's usage line and summary, then the flags.
func newFlags(cli string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(cli, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, ok := lookupCommand(cli)
	if !ok {
		// A command line not in the table: the caller has a bug, and the
		// test of every command's -h finds it.
		c = command{cli: cli, summary: "(not in the table of commands)"}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n%s\n", c.usageLine(), c.summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// usageOf says how to call the commands under word, for a command line
// that named none of them or asked none correctly.
func usageOf(word string, stderr io.Writer) int {
	if c, ok := lookupCommand(word); ok {
		fmt.Fprintf(stderr, "usage: %s\n", c.usageLine())
		return 2
	}
	for i, c := range commandsUnder(word) {
		prefix := "usage:"
		if i > 0 {
			prefix = "      "
		}
		fmt.Fprintf(stderr, "%s %s\n", prefix, c.usageLine())
	}
	return 2
}
