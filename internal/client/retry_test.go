package client

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestRetriesTakeFreshRoutes: every attempt of a fragment is a new packet
// — a new Sphinx header, a new SURB — over a route drawn afresh from every
// mix of each layer, whatever happened to the attempts before; and it has
// the size of every other packet (docs/threat-model.md, "Retries"). The
// routes are read by unwrapping each attempt with the nodes' own keys, as
// the mixes would.
func TestRetriesTakeFreshRoutes(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 61, mixesPerLayer: 2, aliceRand: testrand.New(61, 2)})
	alice, clk := p.alice, p.clock
	p.confirmSession(t)
	if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte("are you there?")}); err != nil {
		t.Fatal(err)
	}
	drop := planned(t, alice, func() (build, error) { return alice.planDrop() })

	const attempts = 40
	uses := map[string]int{} // mix name → attempts through it
	seen := map[string]bool{}
	for attempt := range attempts {
		packet := planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) })
		if packet == nil {
			t.Fatalf("attempt %d: no fragment due", attempt+1)
		}
		if len(packet) != len(drop) {
			t.Fatalf("attempt %d: %d bytes, a drop has %d", attempt+1, len(packet), len(drop))
		}
		header := string(packet[:alice.format.Geometry().HeaderLength()])
		if seen[header] {
			t.Fatalf("attempt %d reuses a header", attempt+1)
		}
		seen[header] = true
		for _, mix := range mixesOf(t, p, packet) {
			uses[mix]++
		}
		// No ack: the fragment is due again after its wait.
		clk.Advance(time.Hour)
	}
	for layer := uint8(1); layer <= p.doc.Parameters.Layers; layer++ {
		for _, n := range p.doc.Layer(layer) {
			// Binomial(40, 1/2): outside 8 to 32 with probability 2e-5.
			if u := uses[n.Name]; u < 8 || u > 32 {
				t.Errorf("%s carried %d of %d attempts: routes are not drawn afresh", n.Name, u, attempts)
			}
		}
	}
	t.Logf("attempts per mix: %v", uses)
}

// planned plans and builds one packet with the client's lock held as the
// schedule does; nil if nothing was planned.
func planned(t *testing.T, c *Client, plan func() (build, error)) []byte {
	t.Helper()
	c.mu.Lock()
	b, err := plan()
	c.unlock()
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return nil
	}
	packet, _, err := b()
	if err != nil {
		t.Fatal(err)
	}
	return packet
}

// mixesOf unwraps a packet hop by hop with the nodes' Sphinx keys from the
// generated network and returns the mixes it passes.
func mixesOf(t *testing.T, p offlinePair, packet []byte) []string {
	t.Helper()
	var mixes []string
	unwrapPath(t, p, packet, func(node *directory.Node) {
		if node.Role == directory.RoleMix {
			mixes = append(mixes, node.Name)
		}
	})
	return mixes
}

// unwrapPath unwraps a copy of a packet hop by hop with the nodes' Sphinx
// keys from the generated network, from alice's provider on, calls visit
// with each node it reaches, and returns what the last hop stores and the
// last hop's commands.
func unwrapPath(t *testing.T, p offlinePair, packet []byte, visit func(*directory.Node)) ([]byte, sphinx.Commands) {
	t.Helper()
	format := p.alice.format
	packet = bytes.Clone(packet)
	node := p.doc.Node(p.doc.Providers()[0].IdentityKey) // alice's provider
	for range 8 {
		visit(node)
		key, err := keyfile.ReadSphinx(filepath.Join(p.netDir, node.Name, "sphinx-keys"), p.doc.Parameters.Geometry.Scheme, p.doc.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		res, err := format.Unwrap(key, packet)
		if err != nil {
			t.Fatalf("unwrapping at %s: %v", node.Name, err)
		}
		next, ok := res.Commands.NextHop()
		if !ok {
			return res.Payload, res.Commands
		}
		node = nodeByID(p.doc, next.ID) // the packet was rewritten in place
	}
	t.Fatal("a route longer than the network")
	return nil, nil
}

func nodeByID(doc *directory.Document, id sphinx.NodeID) *directory.Node {
	for i := range doc.Nodes {
		if doc.Nodes[i].ID() == id {
			return &doc.Nodes[i]
		}
	}
	return nil
}

// TestOfflineContactGetsFewCopies: to a contact who never acknowledges
// (offline for good), a 100-fragment file and a text are sent until their
// deadline and then fail, saying why — after each fragment's fast
// attempts, only one probe goes, about twice an hour, so the contact's
// mailbox gets a bounded number of copies (retry.go). When the contact
// acknowledges the probe, everything to it is due at once.
func TestOfflineContactGetsFewCopies(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 62, mixesPerLayer: 2, aliceRand: testrand.New(62, 2)})
	alice, clk := p.alice, p.clock
	ct := p.confirmSession(t)
	if _, err := alice.Send("bob", Content{Kind: File, Name: "annex.bin", Body: make([]byte, 100*fragmentCapacity(alice.format.Geometry())-500)}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte("are you there?")}); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	sends := func() int { // sends whatever is due now, one send slot each
		n := 0
		for planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) }) != nil {
			n++
		}
		return n
	}
	held := 0 // probes sent to the contact held
	for clk.Now().Sub(start) < DefaultTimeBudget+time.Hour {
		alice.outbox.mu.Lock()
		_, isHeld := alice.outbox.probes()[ct]
		alice.outbox.mu.Unlock()
		n := sends()
		if isHeld && n > 1 {
			t.Fatalf("at %v, %d fragments went at once to a held contact", clk.Now().Sub(start), n)
		}
		if isHeld {
			held += n
		}
		next, ok := nextDue(alice)
		if !ok {
			break
		}
		clk.Advance(max(next.Sub(clk.Now()), time.Millisecond))
	}
	out := alice.Outbox()
	for _, m := range out {
		if m.Status != Failed || !strings.Contains(m.Reason, "not acknowledged within 72h0m0s") {
			t.Fatalf("after the deadline: %+v", m)
		}
	}
	sent := alice.Stats().FragmentsSent
	if sent > 800 {
		t.Fatalf("%d fragments sent to an offline contact over three days, want at most about 700", sent)
	}
	if held < 72 {
		t.Fatalf("only %d probes in three days: a held contact is not probed about twice an hour", held)
	}
	t.Logf("to an offline contact over three days: %d fragments in all, %d of them probes; then: %s", sent, held, out[0].Reason)
}

// TestHeldContactResumes: once a held contact acknowledges the probe, or
// sends a packet of its ack channel (it connected, and says so to every
// contact), its other fragments go at once.
func TestHeldContactResumes(t *testing.T) {
	for _, how := range []string{"the probe's ack", "an empty ack channel packet"} {
		t.Run(how, func(t *testing.T) {
			p := newOfflinePair(t, offline{seed: 63, mixesPerLayer: 2, aliceRand: testrand.New(63, 2)})
			alice, clk := p.alice, p.clock
			bob := p.confirmSession(t)
			if _, err := alice.Send("bob", Content{Kind: File, Name: "annex.bin", Body: make([]byte, 20*fragmentCapacity(alice.format.Geometry())-500)}); err != nil {
				t.Fatal(err)
			}
			start := clk.Now()
			for clk.Now().Sub(start) < 5*time.Hour {
				for planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) }) != nil {
				}
				next, _ := nextDue(alice)
				clk.Advance(max(next.Sub(clk.Now()), time.Millisecond))
			}
			alice.mu.Lock()
			if how == "the probe's ack" {
				// The probe's latest transmission is acknowledged.
				var latest *transmission
				alice.outbox.mu.Lock()
				for _, tr := range alice.outbox.pending {
					if latest == nil || tr.sentAt.After(latest.sentAt) {
						latest = tr
					}
				}
				alice.outbox.mu.Unlock()
				alice.acknowledged(latest, clk.Now())
			} else {
				alice.receiveAckBatch(bob, nil, clk.Now())
			}
			alice.unlock()
			want := unacknowledged(alice)
			n := 0
			for planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) }) != nil {
				n++
			}
			if want < 19 || n != want {
				t.Fatalf("after %s, %d fragments went at once, want every one left (%d)", how, n, want)
			}
		})
	}
}

// nextDue is when the next unacknowledged fragment sent before is due
// again (those not sent yet wait for them; a held contact's wait for its
// probe).
func nextDue(c *Client) (time.Time, bool) {
	c.outbox.mu.Lock()
	defer c.outbox.mu.Unlock()
	held := c.outbox.probes()
	var next time.Time
	for _, m := range c.outbox.msgs {
		if !m.pending() {
			continue
		}
		for i := range m.frags {
			if probe, ok := held[m.to]; ok && probe != (fragmentRef{m, i}) {
				continue
			}
			if m.sent[i] && !m.rec.Acked[i] && (next.IsZero() || m.due[i].Before(next)) {
				next = m.due[i]
			}
		}
	}
	return next, !next.IsZero()
}

// unacknowledged counts the fragments of messages on their way not yet
// acknowledged.
func unacknowledged(c *Client) int {
	c.outbox.mu.Lock()
	defer c.outbox.mu.Unlock()
	n := 0
	for _, m := range c.outbox.msgs {
		for i := range m.frags {
			if m.pending() && !m.rec.Acked[i] {
				n++
			}
		}
	}
	return n
}

// TestCancelAndRetry: a message on its way can be tried again at once or
// cancelled (it fails, saying so, and nothing of it goes again); a failed
// text is queued again as a new message; a delivered one is neither.
func TestCancelAndRetry(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 64, aliceRand: testrand.New(64, 2)})
	alice, clk := p.alice, p.clock
	p.confirmSession(t)
	id, err := alice.Send("bob", Content{Kind: Text, Body: []byte("first offer")})
	if err != nil {
		t.Fatal(err)
	}
	send := func() int {
		n := 0
		for planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) }) != nil {
			n++
		}
		return n
	}
	if n := send(); n != 2 { // the capabilities message and the text
		t.Fatalf("%d fragments went first", n)
	}
	clk.Advance(time.Second) // not due again yet
	if n := send(); n != 0 {
		t.Fatalf("%d fragments went again before their wait", n)
	}
	if again, err := alice.Retry(id); err != nil || again != id {
		t.Fatalf("retry of a message on its way: %q, %v", again, err)
	}
	if n := send(); n != 1 {
		t.Fatalf("%d fragments went at once after a retry, want the text's", n)
	}
	if err := alice.Cancel(id); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute) // past every wait, within the capabilities message's hour
	for _, m := range alice.Outbox() {
		if m.ID == id && (m.Status != Failed || m.Reason != "cancelled by you") {
			t.Fatalf("after cancel: %+v", m)
		}
	}
	if n := send(); n != 1 { // the capabilities message's own retry only
		t.Fatalf("%d fragments went after the cancel", n)
	}
	if err := alice.Cancel(id); !errors.Is(err, ErrNotOnItsWay) {
		t.Fatalf("cancelling a failed message: %v", err)
	}
	again, err := alice.Retry(id)
	if err != nil || again == id {
		t.Fatalf("retry of a failed text: %q, %v", again, err)
	}
	found := false
	for _, m := range alice.Outbox() {
		found = found || m.ID == again && m.Text == "first offer" && m.Status == Queued
	}
	if !found {
		t.Fatalf("the failed text is not queued again: %+v", alice.Outbox())
	}
	if _, err := alice.Retry("00112233445566778899aabbccddeeff"); err == nil {
		t.Fatal("retried a message that does not exist")
	}
}

// TestTimeBudgets: a message's own budget comes first, then its contact's,
// then the client's; each message fails at its own deadline.
func TestTimeBudgets(t *testing.T) {
	p := newOfflinePair(t, offline{seed: 65, aliceRand: testrand.New(65, 2)})
	alice, clk := p.alice, p.clock
	if err := alice.SetTimeBudget("bob", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := alice.Contacts()[0].TimeBudget; got != 2*time.Hour {
		t.Fatalf("bob's budget shows as %v", got)
	}
	start := clk.Now()
	contacts, err := alice.Send("bob", Content{Kind: Text, Body: []byte("within the contact's budget")})
	if err != nil {
		t.Fatal(err)
	}
	own, err := alice.SendWithin("bob", Content{Kind: Text, Body: []byte("within its own")}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	deadlines := map[string]time.Time{}
	for _, m := range alice.Outbox() {
		deadlines[m.ID] = m.Deadline
	}
	// The hidden capabilities message has an hour: an older client never
	// acknowledges it.
	alice.outbox.mu.Lock()
	for _, m := range alice.outbox.msgs {
		if m.rec.Kind == capabilities.String() && !m.rec.Deadline.Equal(start.Add(capabilitiesBudget)) {
			t.Errorf("the capabilities message's deadline is %v after it was queued", m.rec.Deadline.Sub(start))
		}
	}
	alice.outbox.mu.Unlock()
	if !deadlines[contacts].Equal(start.Add(2*time.Hour)) || !deadlines[own].Equal(start.Add(10*time.Minute)) {
		t.Fatalf("deadlines %v", deadlines)
	}
	status := func(id string) MessageInfo {
		for _, m := range alice.Outbox() {
			if m.ID == id {
				return m
			}
		}
		return MessageInfo{}
	}
	clk.Advance(11 * time.Minute)
	planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) })
	if m := status(own); m.Status != Failed || !strings.Contains(m.Reason, "not acknowledged within 10m0s") {
		t.Fatalf("after its 10 minutes: %+v", m)
	}
	if m := status(contacts); m.Status == Failed {
		t.Fatalf("failed before its contact's budget: %+v", m)
	}
	clk.Advance(2 * time.Hour)
	planned(t, alice, func() (build, error) { return alice.planSession(clk.Now()) })
	if m := status(contacts); m.Status != Failed || !strings.Contains(m.Reason, "not acknowledged within 2h0m0s") {
		t.Fatalf("after its contact's 2 hours: %+v", m)
	}
	if err := alice.SetTimeBudget("bob", -time.Second); err == nil {
		t.Fatal("a negative budget was taken")
	}
}
