package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// runStatus is `backchannel status`: the sent messages and the client's
// counters.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("status", stderr)
	wait := fs.Bool("wait", false, "first wait until every message is delivered or failed")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var req control.Request = &control.StatusRequest{}
	if *wait {
		req = &control.WaitRequest{Until: "settled", Timeout: *timeout}
	}
	resp, ok := call[control.StatusResponse](*dir, req, stderr)
	if !ok {
		return 1
	}
	if failed := writeStatus(stdout, resp, time.Now()); failed > 0 {
		return 1
	}
	return 0
}

// writeStatus writes one line per sent message and the client's counters,
// and returns how many messages failed.
func writeStatus(w io.Writer, resp control.StatusResponse, now time.Time) (failed int) {
	for _, m := range resp.Messages {
		by := ""
		if m.ApprovedBy != "" {
			by = fmt.Sprintf("  (drafted by %s, approved by %s)", m.DraftedBy, m.ApprovedBy)
		}
		fmt.Fprintf(w, "%s  to %s  %s  %s%s\n", m.ID, m.Contact, messageWhat(m), messageState(m, now), by)
		if m.Status == client.Failed {
			failed++
		}
	}
	if s := resp.Stats; s != nil {
		writeStats(w, s)
	}
	return failed
}

// messageWhat says what a sent message is: a text's first words, a
// file's name and size, or what a feature's message is for.
func messageWhat(m client.MessageInfo) string {
	switch {
	case m.Kind == client.Text.String() && m.Text != "":
		return "text " + client.Excerpt(m.Text)
	case m.Kind == client.Text.String():
		return fmt.Sprintf("text of %d bytes", m.Size) // its text is gone (disappearing messages)
	case m.Kind == client.File.String():
		return fmt.Sprintf("file %q, %s", m.Name, byteCount(m.Size))
	case m.About != "":
		return m.About
	}
	return m.Kind + " message" // a record of the first releases
}

// messageState says where a sent message is and what happens next.
func messageState(m client.MessageInfo, now time.Time) string {
	switch m.Status {
	case client.Queued:
		return "queued: it goes out in the coming send slots"
	case client.Delivered:
		return "delivered"
	case client.Failed:
		return "failed: " + m.Reason
	}
	var b strings.Builder
	b.WriteString("sent, waiting for the recipient's acknowledgement")
	if m.Attempts > 1 {
		b.Reset()
		fmt.Fprintf(&b, "retrying: attempt %d", m.Attempts)
	}
	if m.Fragments > 1 {
		fmt.Fprintf(&b, "; %d of %d fragments acknowledged", m.Acked, m.Fragments)
	}
	if wait := m.NextAttempt.Sub(now); wait > 0 {
		fmt.Fprintf(&b, "; sent again within %v if no acknowledgement comes", wait.Round(time.Second))
	}
	if !m.Deadline.IsZero() {
		fmt.Fprintf(&b, "; fails if not acknowledged by %s", m.Deadline.Local().Format("Mon 2 Jan 15:04"))
	}
	return b.String()
}

// byteCount writes a size for people.
func byteCount(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// writeStats writes the client's link, document and counters.
func writeStats(w io.Writer, s *client.Stats) {
	link := "connected"
	switch {
	case !s.Connected:
		link = "not connected: " + s.LastError
	case s.LinkVersion == wire.VersionPostQuantum:
		link = "connected, post-quantum"
	case s.LinkVersion == wire.VersionClassical:
		link = "connected, classical (the provider runs the previous release)"
	}
	fmt.Fprintf(w, "provider link: %s; network document epoch %d, valid until %s", link, s.Epoch, s.ValidUntil.Local().Format(time.RFC3339))
	if s.NextEpoch > s.Epoch {
		fmt.Fprintf(w, " (epoch %d held)", s.NextEpoch)
	}
	fmt.Fprintln(w)
	if s.DocumentProblem != "" {
		fmt.Fprintf(w, "network document: %s\n", s.DocumentProblem)
	}
	fmt.Fprintf(w, "sent: %d message fragments (%d of them again, unacknowledged), %d ack channel packets (acknowledgements of what you received, or none, at your contacts), %d single acknowledgements (to contacts of earlier releases), %d drop and %d loop cover packets\n",
		s.FragmentsSent, s.Retransmissions, s.AckPacketsSent, s.AcksSent, s.DropsSent, s.LoopsSent)
	fmt.Fprintf(w, "loops: %d returned, %d lost", s.LoopsReturned, s.LoopsLost)
	if s.LoopsLost > 0 {
		fmt.Fprint(w, " (a loop is lost when a relay on its way is down — the network drops it from its next documents — or when someone drops packets on purpose; if the count keeps growing while `status` shows the network's epochs moving on, tell your provider's operator)")
	}
	fmt.Fprintf(w, "\nreceived: %d messages, %d acknowledgements of messages you sent; %d packets not for you or damaged, %d repeats\n",
		s.MessagesReceived, s.AcksReceived, s.Undecryptable, s.Duplicates)
	if s.AcksNotSent > 0 {
		fmt.Fprintf(w, "acknowledgements not sent: %d (their senders send those messages again; if the count keeps growing, a contact's messages never settle at their end; `client run -log-level debug` logs why)\n", s.AcksNotSent)
	}
}

// runRetry is `backchannel retry ID`: a message on its way goes again at
// once; a failed text is queued again.
func runRetry(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("retry", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("retry", stderr)
	}
	resp, ok := call[control.IDResponse](*dir, &control.RetryRequest{ID: fs.Arg(0)}, stderr)
	if !ok {
		return 1
	}
	if resp.ID != fs.Arg(0) {
		fmt.Fprintf(stdout, "queued again as %s\n", resp.ID)
		return 0
	}
	fmt.Fprintln(stdout, "its unacknowledged fragments go again in the next send slots")
	return 0
}

// runCancel is `backchannel cancel ID`: a message on its way is no longer
// sent.
func runCancel(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("cancel", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("cancel", stderr)
	}
	if _, ok := call[control.Empty](*dir, &control.CancelRequest{ID: fs.Arg(0)}, stderr); !ok {
		return 1
	}
	fmt.Fprintln(stdout, "cancelled: nothing more of it is sent (what the contact already received stays there)")
	return 0
}
