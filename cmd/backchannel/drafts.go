package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// runDrafts is `backchannel drafts`: what waits for approval, and what was
// decided.
func runDrafts(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("drafts", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		return usageOf("drafts", stderr)
	}
	resp, ok := call[control.DraftsResponse](*dir, &control.DraftsRequest{}, stderr)
	if !ok {
		return 1
	}
	if len(resp.Drafts) == 0 {
		fmt.Fprintln(stdout, "no drafts")
	}
	for _, d := range resp.Drafts {
		printDraft(stdout, d)
	}
	return 0
}

// printDraft shows a draft: what it is, who drafted and decided it, and,
// while it waits, exactly what it would do and its content hash (what an
// approval binds).
func printDraft(w io.Writer, d control.DraftInfo) {
	fmt.Fprintf(w, "%s  %s  %s, drafted by %s %s", d.ID, d.State, d.About, d.DraftedBy, d.Drafted.Local().Format(time.DateTime))
	if !d.Edited.IsZero() {
		fmt.Fprintf(w, ", edited %s", d.Edited.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
	switch d.State {
	case "pending":
		fmt.Fprintf(w, "    needs an officer with the %s role other than %s; content %s\n", d.Needs, d.DraftedBy, d.MAC)
	default:
		fmt.Fprintf(w, "    %s by %s %s", d.State, d.DecidedBy, d.Decided.Local().Format(time.DateTime))
		if d.Result != "" {
			fmt.Fprintf(w, ": %s", d.Result)
		}
		fmt.Fprintln(w)
	}
	if d.Note != "" {
		fmt.Fprintf(w, "    note: %s\n", d.Note)
	}
	var fields map[string]any
	if json.Unmarshal(d.Request, &fields) == nil {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if v := fields[k]; v != "" && v != nil {
				fmt.Fprintf(w, "    %s: %v\n", k, v)
			}
		}
	}
}

// runDraft is `backchannel draft edit ID TEXT`.
func runDraft(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("draft", args, stderr)
	if !ok {
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if sub != "edit" || fs.NArg() < 2 {
		return usageOf("draft "+sub, stderr)
	}
	text := strings.Join(fs.Args()[1:], " ")
	if _, ok := call[control.Empty](*dir, &control.DraftEditRequest{ID: fs.Arg(0), Text: text}, stderr); !ok {
		return 1
	}
	fmt.Fprintln(stdout, "edited; it needs an approval of the new text")
	return 0
}

// runApprove is `backchannel approve [--yes] ID`: it shows the draft as it
// is now and, once confirmed, approves that content (its hash), so that
// an edit in between is not approved unseen.
func runApprove(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("approve", stderr)
	yes := fs.Bool("yes", false, "approve what is shown without asking")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("approve", stderr)
	}
	list, ok := call[control.DraftsResponse](*dir, &control.DraftsRequest{}, stderr)
	if !ok {
		return 1
	}
	i := slices.IndexFunc(list.Drafts, func(d control.DraftInfo) bool { return d.ID == fs.Arg(0) })
	if i < 0 {
		fmt.Fprintf(stderr, "backchannel: approve: no draft %s\n", fs.Arg(0))
		return 1
	}
	d := list.Drafts[i]
	printDraft(stdout, d)
	if !*yes && !confirmed("approve this, exactly as shown?", stderr) {
		fmt.Fprintln(stdout, "not approved")
		return 1
	}
	resp, ok := call[control.ApproveResponse](*dir, &control.ApproveRequest{ID: d.ID, MAC: d.MAC}, stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "approved and done (%s)\n", resp.Op)
	return 0
}

// confirmed asks a yes/no question on the terminal.
func confirmed(question string, stderr io.Writer) bool {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintln(stderr, "backchannel: not a terminal: say --yes to approve what is shown")
		return false
	}
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
}

// runReject is `backchannel reject [--note TEXT] ID`.
func runReject(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("reject", stderr)
	note := fs.String("note", "", "why, for the drafter")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("reject", stderr)
	}
	if _, ok := call[control.Empty](*dir, &control.RejectRequest{ID: fs.Arg(0), Note: *note}, stderr); !ok {
		return 1
	}
	fmt.Fprintln(stdout, "rejected: it never leaves, and its content is deleted")
	return 0
}

// runDualControl is `backchannel dual-control on|off|show [--contact NAME]`.
func runDualControl(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("dual-control", stderr)
	contact := fs.String("contact", "", "for this contact only (default: the whole identity)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	word := fs.Arg(0)
	if fs.NArg() != 1 || (word != "on" && word != "off" && word != "show") {
		return usageOf("dual-control", stderr)
	}
	resp, code, done := callAct[control.DualControlResponse](*dir, &control.DualControlRequest{On: word == "on", Show: word == "show", Contact: *contact}, stdout, stderr)
	if !done {
		return code
	}
	switch {
	case resp.Setting.Identity:
		fmt.Fprintln(stdout, "dual control: on for the whole identity")
	case len(resp.Setting.Contacts) > 0:
		fmt.Fprintf(stdout, "dual control: on for %s\n", strings.Join(resp.Setting.Contacts, ", "))
	default:
		fmt.Fprintln(stdout, "dual control: off")
	}
	return 0
}
