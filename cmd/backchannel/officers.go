package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// runOfficer is `backchannel officer list|add|remove|role`.
func runOfficer(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("officer", args, stderr)
	if !ok {
		return 2
	}
	rolesFlag := ""
	if sub == "add" {
		fs.StringVar(&rolesFlag, "roles", "", "the new officer's roles, comma-separated: reader, drafter, releaser, administrator")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var req control.Request
	switch {
	case sub == "login" && fs.NArg() == 0:
		return runOfficerLogin(*dir, stdout, stderr)
	case sub == "logout" && fs.NArg() == 0:
		if _, ok := call[struct{}](*dir, &control.OfficerLogoutRequest{}, stderr); !ok {
			return 1
		}
		fmt.Fprintln(stdout, "unset "+tokenEnv)
		return 0
	case sub == "list" && fs.NArg() == 0:
		req = &control.OfficerListRequest{}
	case sub == "add" && fs.NArg() == 1 && rolesFlag != "":
		roles, err := client.ParseRoles(rolesFlag)
		if err != nil {
			fmt.Fprintln(stderr, "backchannel:", err)
			return 2
		}
		fmt.Fprintf(stderr, "%s types their own passphrase now\n", fs.Arg(0))
		pass, err := passphrase("BACKCHANNEL_NEW_OFFICER_PASSPHRASE", fs.Arg(0)+"'s passphrase", true, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "backchannel:", err)
			return 1
		}
		req = &control.OfficerAddRequest{Name: fs.Arg(0), Passphrase: string(pass), Roles: roles}
	case sub == "passphrase" && fs.NArg() == 0:
		pass, err := passphrase("BACKCHANNEL_NEW_PASSPHRASE", "your new passphrase", true, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "backchannel:", err)
			return 1
		}
		req = &control.OfficerPassphraseRequest{Passphrase: string(pass)}
	case sub == "remove" && fs.NArg() == 1:
		req = &control.OfficerRemoveRequest{Name: fs.Arg(0)}
	case sub == "role" && fs.NArg() == 2:
		roles, err := client.ParseRoles(fs.Arg(1))
		if err != nil {
			fmt.Fprintln(stderr, "backchannel:", err)
			return 2
		}
		req = &control.OfficerRoleRequest{Name: fs.Arg(0), Roles: roles}
	default:
		return usageOf("officer "+sub, stderr)
	}
	resp, code, done := callAct[control.OfficerListResponse](*dir, req, stdout, stderr)
	if !done {
		return code
	}
	switch sub {
	case "add":
		fmt.Fprintf(stdout, "%s is an officer; they unlock with their own passphrase\n", fs.Arg(0))
	case "remove":
		fmt.Fprintf(stdout, "%s is removed: their passphrase opens nothing of the state from now on (what they saw or copied before stays theirs)\n", fs.Arg(0))
	case "role":
		fmt.Fprintf(stdout, "%s's roles are changed\n", fs.Arg(0))
	case "passphrase":
		fmt.Fprintln(stdout, "your passphrase is changed: the old one no longer opens the state (a copy of its files taken before still would; if the old one may be known, have an administrator remove you and add you again, which moves the state to a new key)")
	}
	printOfficers(stdout, resp.Officers)
	return 0
}

// tokenEnv holds a terminal's officer login token.
const tokenEnv = "BACKCHANNEL_OFFICER_TOKEN"

// runOfficerLogin is `backchannel officer login`: it proves the officer's
// passphrase to the daemon and prints, for the shell to eval, the line
// that gives this terminal the login token. The token lives in that
// shell's environment alone, and in the daemon's memory until it expires.
func runOfficerLogin(dir string, stdout, stderr io.Writer) int {
	pass, err := passphrase("BACKCHANNEL_OFFICER_PASSPHRASE", "your officer's passphrase", false, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "backchannel:", err)
		return 1
	}
	resp, ok := call[control.OfficerLoginResponse](dir, &control.OfficerLoginRequest{Passphrase: string(pass)}, stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stderr, "logged in as %s until %s\n", resp.Officer, resp.Expires.Local().Format(time.Kitchen))
	fmt.Fprintf(stdout, "export %s=%s\n", tokenEnv, resp.Token)
	return 0
}

func printOfficers(w io.Writer, officers []client.Officer) {
	for _, o := range officers {
		roles := make([]string, len(o.Roles))
		for i, r := range o.Roles {
			roles[i] = string(r)
		}
		you := ""
		if o.You {
			you = "  (you)"
		}
		fmt.Fprintf(w, "%-20s %-40s added %s%s\n", o.Name, strings.Join(roles, ", "), o.Added.Local().Format(time.DateOnly), you)
	}
}
