package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// The commands of what makes it a backchannel: introductions, conveyed
// messages and their receipts, mutual interest checks. Each talks to the
// daemon like the other client commands.

// subcommand parses "NAME [flags] args" for a command with subcommands.
func subcommand(cmd string, args []string, stderr io.Writer) (sub string, fs *flag.FlagSet, dir *string, ok bool) {
	if len(args) == 0 {
		usageOf(cmd, stderr)
		return "", nil, nil, false
	}
	fs, dir = clientFlags(cmd+" "+args[0], stderr)
	return args[0], fs, dir, true
}

// runIntroduce is `backchannel introduce A B --label-for-a … --label-for-b …`.
func runIntroduce(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("introduce", stderr)
	labelA := fs.String("label-for-a", "", "how B is shown to A (e.g. \"a party in country X\")")
	labelB := fs.String("label-for-b", "", "how A is shown to B")
	note := fs.String("note", "", "a note to both")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || *labelA == "" || *labelB == "" {
		return usageOf("introduce", stderr)
	}
	resp, code, done := callAct[control.IDResponse](*dir, &control.IntroduceRequest{A: fs.Arg(0), B: fs.Arg(1), LabelForA: *labelA, LabelForB: *labelB, Note: *note}, stdout, stderr)
	if !done {
		return code
	}
	fmt.Fprintf(stdout, "introduction %s sent to both; they become contacts only if both accept\n", resp.ID)
	return 0
}

// runIntro is `backchannel intro list|accept ID|decline ID`.
func runIntro(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("intro", args, stderr)
	if !ok {
		return 2
	}
	wait := fs.Int("wait", 0, "list: first wait until this many introductions are listed")
	waitDone := fs.Int("wait-done", 0, "list: first wait until this many introductions are complete")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case sub == "list" && fs.NArg() == 0:
		if !waitFor(*dir, "introductions", *wait, *timeout, stderr) || !waitFor(*dir, "introductions-done", *waitDone, *timeout, stderr) {
			return 1
		}
		resp, ok := call[control.IntroductionsResponse](*dir, &control.IntroListRequest{}, stderr)
		if !ok {
			return 1
		}
		for _, in := range resp.Introductions {
			if in.Intermediary {
				fmt.Fprintf(stdout, "%s  you introduced %s and %s: %s\n", in.ID, in.Sides[0], in.Sides[1], in.State)
				continue
			}
			fmt.Fprintf(stdout, "%s  %s introduces you to %q: %s\n", in.ID, in.From, in.Label, in.State)
			if in.Note != "" {
				fmt.Fprintf(stdout, "  note: %s\n", in.Note)
			}
		}
		return 0
	case (sub == "accept" || sub == "decline") && fs.NArg() == 1:
		if _, ok := call[control.Empty](*dir, &control.IntroAnswerRequest{ID: fs.Arg(0), Accept: sub == "accept"}, stderr); !ok {
			return 1
		}
		fmt.Fprintf(stdout, "answered (%s); the other side learns nothing unless you both accept\n", sub)
		return 0
	}
	return usageOf("intro "+sub, stderr)
}

// waitFor waits on the daemon until the condition holds count times (0:
// no wait).
func waitFor(dir, until string, count int, timeout time.Duration, stderr io.Writer) bool {
	if count <= 0 {
		return true
	}
	_, ok := call[control.StatusResponse](dir, &control.WaitRequest{Until: until, Count: count, Timeout: timeout}, stderr)
	return ok
}

// runConvey is `backchannel convey …`: write through an intermediary.
func runConvey(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("convey", args, stderr)
	if !ok {
		return 2
	}
	to := fs.String("to", "", "send: how you name the recipient to the intermediary")
	receipt := fs.String("receipt", "none", "the receipt to ask for: none, deniable (convinces only you) or signed (others can check it)")
	wait := fs.Int("wait", 0, "list: first wait until this many have an outcome")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case sub == "send" && fs.NArg() == 2:
		resp, code, done := callAct[control.IDResponse](*dir, &control.ConveyRequest{Via: fs.Arg(0), To: *to, Text: fs.Arg(1), Receipt: *receipt}, stdout, stderr)
		if !done {
			return code
		}
		fmt.Fprintf(stdout, "%s given to %s to convey (receipt: %s)\n", resp.ID, fs.Arg(0), *receipt)
		return 0
	case sub == "reply" && fs.NArg() == 2:
		resp, code, done := callAct[control.IDResponse](*dir, &control.ConveyReplyRequest{ID: fs.Arg(0), Text: fs.Arg(1), Receipt: *receipt}, stdout, stderr)
		if !done {
			return code
		}
		fmt.Fprintf(stdout, "%s given to the intermediary to convey back\n", resp.ID)
		return 0
	case sub == "list" && fs.NArg() == 0:
		if !waitFor(*dir, "conveyed", *wait, *timeout, stderr) {
			return 1
		}
		resp, ok := call[control.ConveyancesResponse](*dir, &control.ConveyListRequest{}, stderr)
		if !ok {
			return 1
		}
		for _, cv := range resp.Conveyances {
			fmt.Fprintf(stdout, "%s  via %s to %q: %s  %q\n", cv.ID, cv.Via, cv.To, cv.State, cv.Text)
			if cv.Note != "" {
				fmt.Fprintf(stdout, "  note from %s: %s\n", cv.Via, cv.Note)
			}
			fmt.Fprintf(stdout, "  receipt asked: %s\n", cv.ReceiptKind)
			if r := cv.Receipt; r != nil {
				kind := "deniable"
				if len(r.Signature) > 0 {
					kind = "signed"
				}
				fmt.Fprintf(stdout, "  %s receipt: conveyed to %q at %s\n", kind, r.To, r.Time.Local().Format(time.RFC3339))
			}
		}
		return 0
	case sub == "receipt" && fs.NArg() == 1:
		resp, ok := call[control.ProofResponse](*dir, &control.ReceiptRequest{ID: fs.Arg(0)}, stderr)
		if !ok {
			return 1
		}
		file, err := convey.MarshalReceiptFile(resp.Proof)
		if err != nil {
			fmt.Fprintf(stderr, "backchannel: %v\n", err)
			return 1
		}
		stdout.Write(file)
		return 0
	}
	return usageOf("convey "+sub, stderr)
}

// runReceipt is `backchannel receipt verify FILE --card CARD`: a third
// party's check of a signed receipt, against the intermediary's card the
// checker trusts (not the one in the file). It needs no daemon or state.
func runReceipt(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		return usageOf("receipt", stderr)
	}
	fs := newFlags("receipt verify", stderr)
	cardPath := fs.String("card", "", "the intermediary's contact card, as you obtained it yourself")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *cardPath == "" {
		return usageOf("receipt verify", stderr)
	}
	err := func() error {
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		proof, err := convey.ParseReceiptFile(data)
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		cardText, err := os.ReadFile(*cardPath)
		if err != nil {
			return err
		}
		card, err := identity.ParseCardText(cardText)
		if err != nil {
			return err
		}
		r := proof.Receipt
		if err := r.Verify(proof.Text, proof.Salt, card.SigningKey); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "valid: the intermediary signed that the message %q was conveyed to %q at %s\n", proof.Text, r.To, r.Time.Local().Format(time.RFC3339))
		return nil
	}()
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: receipt: %v\n", err)
		return 1
	}
	return 0
}

// runDesk is `backchannel desk …`: the intermediary's desk.
func runDesk(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("desk", args, stderr)
	if !ok {
		return 2
	}
	to := fs.String("to", "", "pass: the contact to pass it to (for an answer: back to the original sender if empty)")
	as := fs.String("as", "", "pass: how to name the sender to the recipient")
	note := fs.String("note", "", "your note")
	wait := fs.Int("wait", 0, "list: first wait until the desk holds this many")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case sub == "list" && fs.NArg() == 0:
		if !waitFor(*dir, "desk", *wait, *timeout, stderr) {
			return 1
		}
		resp, ok := call[control.DeskResponse](*dir, &control.DeskListRequest{}, stderr)
		if !ok {
			return 1
		}
		for _, e := range resp.Desk {
			to := fmt.Sprintf("for %q", e.To)
			if e.ReplyTo != "" {
				to = "an answer for " + e.ReplyTo
			}
			fmt.Fprintf(stdout, "%s  from %s, %s: %s  %q\n", e.ID, e.From, to, e.State, e.Text)
			fmt.Fprintf(stdout, "  receipt asked: %s\n", e.Receipt)
			if e.PassedTo != "" {
				fmt.Fprintf(stdout, "  passed to %s\n", e.PassedTo)
			}
		}
		return 0
	case sub == "pass" && fs.NArg() == 1:
		if _, code, done := callAct[control.Empty](*dir, &control.DeskPassRequest{ID: fs.Arg(0), To: *to, As: *as, Note: *note}, stdout, stderr); !done {
			return code
		}
		fmt.Fprintln(stdout, "passed on; the sender is told once the recipient's client acknowledges it (with your signed receipt, if one was asked)")
		return 0
	case sub == "refuse" && fs.NArg() == 1:
		if _, ok := call[control.Empty](*dir, &control.DeskRefuseRequest{ID: fs.Arg(0), Note: *note}, stderr); !ok {
			return 1
		}
		fmt.Fprintln(stdout, "refused; the sender is told, with your note")
		return 0
	}
	return usageOf("desk "+sub, stderr)
}

// runCheck is `backchannel check …`: mutual interest checks.
func runCheck(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("check", args, stderr)
	if !ok {
		return 2
	}
	answer := fs.String("answer", "", "ask: your own answer (asking is answering)")
	within := fs.Duration("within", time.Hour, "ask: how long the contact has to answer")
	wait := fs.Int("wait", 0, "list: first wait until this many checks are listed")
	waitDone := fs.Int("wait-done", 0, "list: first wait until this many checks have a result")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case sub == "ask" && fs.NArg() == 2:
		resp, code, done := callAct[control.IDResponse](*dir, &control.CheckAskRequest{With: fs.Arg(0), Question: fs.Arg(1), Answer: *answer, Within: *within}, stdout, stderr)
		if !done {
			return code
		}
		fmt.Fprintf(stdout, "check %s asked; the result comes after %v\n", resp.ID, *within)
		return 0
	case sub == "answer" && fs.NArg() == 2:
		if _, code, done := callAct[control.Empty](*dir, &control.CheckAnswerRequest{ID: fs.Arg(0), Answer: fs.Arg(1)}, stdout, stderr); !done {
			return code
		}
		fmt.Fprintln(stdout, "answer recorded; it is sent at the deadline, and looks the same whatever it is")
		return 0
	case sub == "list" && fs.NArg() == 0:
		if !waitFor(*dir, "checks", *wait, *timeout, stderr) || !waitFor(*dir, "checks-done", *waitDone, *timeout, stderr) {
			return 1
		}
		resp, ok := call[control.ChecksResponse](*dir, &control.CheckListRequest{}, stderr)
		if !ok {
			return 1
		}
		for _, ch := range resp.Checks {
			who := "asked by " + ch.Contact
			if ch.Asked {
				who = "you asked " + ch.Contact
			}
			fmt.Fprintf(stdout, "%s  %s %q (deadline %s): your answer %s; %s", ch.ID, who, ch.Question, ch.Deadline.Local().Format(time.RFC3339), ch.Answer, ch.Result)
			if ch.Reason != "" {
				fmt.Fprintf(stdout, " (%s)", ch.Reason)
			}
			fmt.Fprintln(stdout)
		}
		return 0
	}
	return usageOf("check "+sub, stderr)
}
