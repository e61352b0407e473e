package client

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// A simulated network of two running clients, alice and bob, on a fake
// clock: each client's schedule fires as Run's would, every packet is
// unwrapped hop by hop with the nodes' keys and stored in the mailbox it
// names after the delays its route asks for, and each client fetches its
// mailbox at the document's poll interval. What alice's provider sees is
// recorded: when alice sends a packet, and when it stores one into her
// mailbox, of which form.

// simClient is one client of a simNet.
type simClient struct {
	c        *Client
	link     *capturingLink
	sched    *schedule
	ev       event
	at       time.Time // the next event of the schedule
	provider *directory.Node
	mailbox  [sphinx.RecipientIDLength]byte
	poll     time.Time
	box      [][]byte // stored, not fetched yet
	sent     []time.Time
	stored   []storedPacket
}

// storedPacket is a packet stored into a mailbox, as its provider sees it.
type storedPacket struct {
	at    time.Time
	reply bool // a SURB reply, not a forward packet
}

// inTransit is a packet on its way to a mailbox.
type inTransit struct {
	at       time.Time
	to       *simClient
	delivery []byte
	reply    bool
}

type simNet struct {
	t       *testing.T
	p       offlinePair
	clients []*simClient
	keys    map[string]*sphinx.PrivateKey
	flying  []inTransit
	// dead names nodes that are listed but down: a packet reaching one
	// is lost, as it would be at a SIGKILLed mix.
	dead map[string]bool
	lost int
}

// newSimNet starts alice and bob of an offline pair on the simulated
// network, as connected clients (each opens its ack channels once).
func newSimNet(t *testing.T, seed byte) *simNet {
	t.Helper()
	p := newOfflinePair(t, offline{seed: seed, mixesPerLayer: 2, scheduleSeed: [32]byte{seed, 'a'},
		aliceRand: testrand.New(seed, 'a'), bobRand: testrand.New(seed, 'b')})
	p.bobCfg.ScheduleSeed = [32]byte{seed, 'b'}
	bob := withBob(t, p)
	n := &simNet{t: t, p: p, keys: map[string]*sphinx.PrivateKey{}, dead: map[string]bool{}}
	providers := p.doc.Providers()
	for i, c := range []*Client{p.alice, bob} {
		s := &simClient{c: c, link: &capturingLink{recordingLink: recordingLink{clock: p.clock}},
			sched: newSchedule(c.timing, p.doc.Parameters, p.clock.Now()), provider: providers[i], mailbox: c.id.Mailbox,
			poll: p.clock.Now().Add(time.Duration(i) * p.doc.Parameters.PollInterval / 2)}
		s.ev, s.at, _ = s.sched.pop()
		c.mu.Lock()
		c.probeContacts()
		c.unlock()
		n.clients = append(n.clients, s)
	}
	return n
}

// leaveOut gives both clients a document without the named node, as the
// authorities publish once it stopped uploading. The simulation keeps the
// epoch (and so the nodes' keys): for the clients' routes only the node
// list matters.
func (n *simNet) leaveOut(name string) {
	n.t.Helper()
	doc := *n.p.doc
	doc.Nodes = slices.DeleteFunc(slices.Clone(doc.Nodes), func(node directory.Node) bool { return node.Name == name })
	for _, s := range n.clients {
		if err := s.c.useDocument(&doc); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *simNet) alice() *simClient { return n.clients[0] }
func (n *simNet) bob() *simClient   { return n.clients[1] }

// run runs the network until the clock reaches until.
func (n *simNet) run(until time.Time) {
	n.t.Helper()
	clk := n.p.clock
	for {
		// The earliest event: a send, a fetch or an arrival.
		var next time.Time
		act := func() {}
		consider := func(at time.Time, f func()) {
			if next.IsZero() || at.Before(next) {
				next, act = at, f
			}
		}
		for _, s := range n.clients {
			consider(s.at, func() { n.fire(s) })
			consider(s.poll, func() { n.fetch(s) })
		}
		for i, a := range n.flying {
			consider(a.at, func() {
				n.flying = slices.Delete(n.flying, i, i+1)
				a.to.box = append(a.to.box, a.delivery)
				a.to.stored = append(a.to.stored, storedPacket{at: a.at, reply: a.reply})
			})
		}
		if next.After(until) {
			clk.Advance(until.Sub(clk.Now()))
			return
		}
		clk.Advance(next.Sub(clk.Now()))
		act()
	}
}

// fire sends the client's next scheduled packet, and routes it.
func (n *simNet) fire(s *simClient) {
	n.t.Helper()
	from := len(s.link.packets)
	if err := s.c.fire(s.ev, s.link); err != nil {
		n.t.Fatal(err)
	}
	s.ev, s.at, _ = s.sched.pop()
	for _, packet := range s.link.packets[from:] {
		s.sent = append(s.sent, n.p.clock.Now())
		n.route(s.provider, packet)
	}
	s.link.packets = s.link.packets[:0]
}

// fetch hands the client what its mailbox holds, as a fetch does.
func (n *simNet) fetch(s *simClient) {
	n.t.Helper()
	var batch []clientlink.Fetched
	for _, d := range s.box {
		batch = append(batch, clientlink.Fetched{Packet: d})
	}
	s.box = nil
	if err := s.c.receive(batch, n.p.clock.Now()); err != nil {
		n.t.Fatal(err)
	}
	s.poll = s.poll.Add(n.p.doc.Parameters.PollInterval)
}

// route unwraps a packet from the sender's provider on with the nodes'
// keys, and sends what the last hop stores on its way to the mailbox it
// names, after the delays its route asks for (a drop packet is dropped).
func (n *simNet) route(node *directory.Node, packet []byte) {
	n.t.Helper()
	p := n.p
	packet = bytes.Clone(packet)
	var delay time.Duration
	for range 8 {
		if n.dead[node.Name] {
			n.lost++
			return
		}
		key := n.keys[node.Name]
		if key == nil {
			var err error
			if key, err = keyfile.ReadSphinx(filepath.Join(p.netDir, node.Name, "sphinx-keys"), p.doc.Parameters.Geometry.Scheme, p.doc.Epoch); err != nil {
				n.t.Fatal(err)
			}
			n.keys[node.Name] = key
		}
		res, err := p.alice.format.Unwrap(key, packet)
		if err != nil {
			n.t.Fatalf("unwrapping at %s: %v", node.Name, err)
		}
		var d wire.Delivery
		var to *simClient
		for _, cmd := range res.Commands {
			switch cmd := cmd.(type) {
			case sphinx.NodeDelay:
				delay += time.Duration(cmd.Milliseconds) * time.Millisecond
			case sphinx.Recipient:
				for _, s := range n.clients {
					if s.mailbox == cmd.ID {
						to = s
					}
				}
			case sphinx.SURBReply:
				id := cmd.ID
				d.SURBID = &id
			}
		}
		next, ok := res.Commands.NextHop()
		if ok {
			node = nodeByID(p.doc, next.ID) // the packet was rewritten in place
			continue
		}
		if to != nil {
			d.Payload = res.Payload
			delivery, err := d.MarshalBinary()
			if err != nil {
				n.t.Fatal(err)
			}
			n.flying = append(n.flying, inTransit{at: p.clock.Now().Add(delay), to: to, delivery: delivery, reply: d.SURBID != nil})
		}
		return
	}
	n.t.Fatal("a route longer than the network")
}

// providerView is what alice's provider sees over a window: the count of
// packets stored into her mailbox per countWindow, of each form, and for
// each packet alice sends, the time until the next store into her
// mailbox.
type providerView struct {
	counts, replies []float64
	lags            []float64
	// roundTrip is alice's smoothed round trip of acks at the end.
	roundTrip time.Duration
}

const countWindow = 5 * time.Second

func (s *simClient) view(from, to time.Time) providerView {
	var v providerView
	for w := from; w.Before(to); w = w.Add(countWindow) {
		var forward, replies float64
		for _, st := range s.stored {
			if !st.at.Before(w) && st.at.Before(w.Add(countWindow)) {
				if st.reply {
					replies++
				} else {
					forward++
				}
			}
		}
		v.counts = append(v.counts, forward+replies)
		v.replies = append(v.replies, replies)
	}
	for _, sent := range s.sent {
		if sent.Before(from) || !sent.Before(to) {
			continue
		}
		i, _ := slices.BinarySearchFunc(s.stored, sent, func(st storedPacket, t time.Time) int {
			if st.at.After(t) {
				return 1
			}
			return -1
		})
		if i < len(s.stored) {
			v.lags = append(v.lags, s.stored[i].at.Sub(sent).Seconds())
		}
	}
	return v
}

// providerRun is one simulated run: alice and bob set their session up
// and tell each other what their software reads (a message each way),
// then alice sends bob the given number of texts over the first two minutes of
// the measured three, or none. With perFragment, bob acknowledges alice's
// fragments one packet each, as the previous release did (the control).
func providerRun(t *testing.T, seed byte, messages int, perFragment bool) providerView {
	t.Helper()
	n := newSimNet(t, seed)
	alice, bob := n.alice(), n.bob()
	start := n.p.clock.Now()
	for _, s := range []struct {
		c  *Client
		to string
	}{{alice.c, "bob"}, {bob.c, "alice"}} {
		if _, err := s.c.Send(s.to, Content{Kind: Text, Body: []byte("the first word")}); err != nil {
			t.Fatal(err)
		}
	}
	n.run(start.Add(time.Minute))
	for _, s := range []*simClient{alice, bob} {
		other := s.c.Contacts()[0]
		if other.Reads != contentVersion || other.Session != "established" || countStatus(s.c, Delivered) != 1 {
			t.Fatalf("after the first word: %+v, outbox %+v", other, s.c.Outbox())
		}
	}
	if perFragment {
		ct := bob.c.byName("alice")
		bob.c.mu.Lock()
		ct.mu.Lock()
		ct.rec.Reads = readsForwardAcks
		ct.mu.Unlock()
		bob.c.unlock()
	}
	from := n.p.clock.Now()
	for i := range messages {
		// In 20 bursts of 5, as a conversation comes.
		at := from.Add(time.Duration(i/5) * 6 * time.Second)
		n.run(at)
		if _, err := alice.c.Send("bob", Content{Kind: Text, Body: []byte(fmt.Sprintf("message %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	n.run(from.Add(3 * time.Minute))
	if got := countStatus(alice.c, Delivered); got < 1+messages*3/4 {
		t.Fatalf("%d of alice's %d messages delivered within the run", got-1, messages)
	}
	v := alice.view(from, from.Add(3*time.Minute))
	alice.c.mu.Lock()
	v.roundTrip = alice.c.srtt
	alice.c.unlock()
	return v
}

// countStatus counts the messages in c's outbox with the status.
func countStatus(c *Client, status Status) int {
	n := 0
	for _, m := range c.Outbox() {
		if m.Status == status {
			n++
		}
	}
	return n
}

// TestProviderCannotSeeSending is issue 21's check that a user's provider
// cannot tell when its user sends (ackchannel.go): what it stores into
// alice's mailbox — how many packets per 5 s, of which form, and how
// soon after each packet alice sends — while she sends 100 messages to an
// online contact cannot be told from the same while she is idle, by a
// two-sample Kolmogorov–Smirnov test at level 0.01; with acks sent one per
// fragment (the control: the previous release's behaviour), it can.
func TestProviderCannotSeeSending(t *testing.T) {
	// Four independent runs, in parallel: each has its own clock, network
	// and seed.
	runs := []struct {
		name        string
		seed        byte
		messages    int
		perFragment bool
	}{{"idle", 81, 0, false}, {"sending", 82, 100, false}, {"control idle", 83, 0, true}, {"control sending", 84, 100, true}}
	views := make([]providerView, len(runs))
	t.Run("runs", func(t *testing.T) {
		for i, r := range runs {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				views[i] = providerRun(t, r.seed, r.messages, r.perFragment)
			})
		}
	})
	if t.Failed() {
		return
	}
	idle, busy, oldIdle, oldBusy := views[0], views[1], views[2], views[3]

	for _, v := range []providerView{idle, busy, oldIdle, oldBusy} {
		for _, r := range v.replies {
			if r != 0 {
				t.Fatalf("a SURB reply was stored into alice's mailbox: %v", v.replies)
			}
		}
	}
	const alpha = 0.01
	told := func(what string, a, b []float64) bool {
		d, critical := ksStatistic(a, b), ksCritical(alpha, len(a), len(b))
		t.Logf("%s: D = %.4f (%d and %d samples), critical value at %.2f: %.4f", what, d, len(a), len(b), alpha, critical)
		return d >= critical
	}
	mean := func(x []float64) float64 {
		var s float64
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	t.Logf("packets stored per 5 s: idle %.2f, sending %.2f; control idle %.2f, sending %.2f",
		mean(idle.counts), mean(busy.counts), mean(oldIdle.counts), mean(oldBusy.counts))
	t.Logf("round trip of acks while sending: %v with the ack channel, %v one ack per fragment", busy.roundTrip.Round(time.Millisecond), oldBusy.roundTrip.Round(time.Millisecond))
	if told("count per 5 s, idle vs sending", idle.counts, busy.counts) {
		t.Error("the provider tells from the count of packets stored that alice sends")
	}
	if told("lag after alice's packets, idle vs sending", idle.lags, busy.lags) {
		t.Error("the provider tells from when packets are stored after alice's that she sends")
	}
	countTold := told("control: count per 5 s, idle vs sending", oldIdle.counts, oldBusy.counts)
	lagTold := told("control: lag after alice's packets, idle vs sending", oldIdle.lags, oldBusy.lags)
	if !countTold || !lagTold {
		t.Error("the test does not tell apart a client whose acks come one per fragment: it could not see a leak either")
	}
}
