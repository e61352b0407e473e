package e2e

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/faultnet"
)

// authorityNetwork generates and starts a network that follows n authority
// processes (threshold k): three layers of mixesPerLayer mixes, two
// providers, epochs of the given length, the clients' fast parameters.
func authorityNetwork(t *testing.T, mixesPerLayer, n, k int, epoch time.Duration) (*network, *authorityProcs) {
	t.Helper()
	nodes := 2 + 3*mixesPerLayer
	addrs := freeAddresses(t, 2*nodes+n)
	dir := t.TempDir()
	args := []string{"testnet", "-dir", dir, "-mixes", fmt.Sprint(mixesPerLayer), "-layers", "3", "-providers", "2",
		"-addresses", strings.Join(addrs[:nodes], ","), "-metrics-addresses", strings.Join(addrs[nodes:2*nodes], ","),
		"-mean-delay", "1ms", "-authorities", fmt.Sprint(n), "-threshold", fmt.Sprint(k),
		"-authority-addresses", strings.Join(addrs[2*nodes:], ","), "-epoch", epoch.String(), "-clock-skew", "1s"}
	run(t, append(args, clientParameters...)...)
	authorities := startAuthorities(t, dir, n, addrs[2*nodes:])
	nw := loadNetwork(t, dir, addrs[nodes:2*nodes], nil)
	t.Cleanup(nw.stopAll)
	for _, node := range nw.doc.Nodes {
		nw.start(node.Name)
	}
	return nw, authorities
}

// TestMixStaysDown: a mix is SIGKILLed and stays down while two users keep
// writing. The documents already made list it, and so do those frozen
// less than 10 s after it died (authorities freeze only nodes heard from
// lately); packets routed through it in that time are lost and
// retransmitted; the first document without it
// is published by the authority on its own (nobody tells it the mix is
// down: the mix uploads nothing more), the clients move to it and route
// around it, and once the previous epoch's grace period is over the nodes
// before it (the authority assigns layers anew each epoch) close their
// links to it and drop what they held for it. Afterwards no packet is
// routed to it (no node counts a bad_next_hop), and every message, before
// and after, is delivered exactly once.
//
// The clients run the default attempt policy: while the dead mix is listed
// an attempt succeeds with probability 1/4 (its layer has two mixes, on the
// way there and on the acknowledgement's way back), and a fragment is sent
// again until its message's deadline, days away (RELIABILITY.md).
func TestMixStaysDown(t *testing.T) {
	const epoch = 8 * time.Second
	nw, authorities := authorityNetwork(t, 2, 1, 1, epoch)
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	exchange(t, "before", 3, alice, bob)

	down := nw.node("mix-2-a")
	killed := uint64(nw.counter("backchannel_epoch", "", "provider-a"))
	nw.kill(down.Name, syscall.SIGKILL)
	t.Logf("mix-2-a killed in epoch %d", killed)
	for i := range 10 {
		alice.cli("send", "bob", fmt.Sprintf("while listed: alice to bob #%d", i))
		bob.cli("send", "alice", fmt.Sprintf("while listed: bob to alice #%d", i))
	}

	// The first document that leaves it out, and the nodes before it in
	// the last that lists it.
	var without uint64
	var before []string
	for e := killed; e <= killed+4 && without == 0; e++ {
		doc := nw.doc // the genesis document, which testnet wrote: no authority publishes it
		if e > 0 {
			var err error
			if doc, err = directory.Verify(authorities.document(0, e), nw.trust, time.Now().Add(2*epoch)); err != nil {
				t.Fatalf("the document of epoch %d: %v", e, err)
			}
		}
		listed := doc.Node(down.IdentityKey)
		if listed == nil && e == killed {
			t.Fatalf("mix-2-a is not in the document of epoch %d, in which it was killed", e)
		}
		if listed == nil {
			without = e
			break
		}
		before = before[:0]
		for _, n := range doc.Nodes {
			if (listed.Layer == 1 && n.Role == directory.RoleProvider) || (n.Role == directory.RoleMix && n.Layer == listed.Layer-1) {
				before = append(before, n.Name)
			}
		}
	}
	if without == 0 || without > killed+3 {
		// Authorities freeze only nodes heard from within 10 s (these
		// epochs are 8 s, so a freeze every 8 s): a mix killed in epoch
		// k is out of k+3's document, or k+2's if it died in k's first
		// 2 s.
		t.Fatalf("mix-2-a, down since epoch %d, is in every document up to epoch %d", killed, cmp.Or(without, killed+5)-1)
	}
	t.Logf("the document of epoch %d is the first without mix-2-a; %v were before it in the last that listed it", without, before)
	for _, c := range []*clientProc{alice, bob} {
		if err := c.out.waitFor(0, 2*epoch, "new network epoch", fmt.Sprintf("epoch=%d ", without)); err != nil {
			t.Fatalf("%s did not move to epoch %d: %v", c.name, without, err)
		}
	}
	for _, name := range before {
		if err := nw.outputs[name].waitFor(0, 2*epoch, "not in the network document any more", "peer=mix-2-a"); err != nil {
			t.Fatalf("%s did not close its link to mix-2-a: %v", name, err)
		}
	}
	var alive []string
	for _, name := range nw.names() {
		if name != down.Name {
			alive = append(alive, name)
		}
	}
	held := nw.counter("backchannel_packets_dropped_total", "next_hop_left", alive...)
	misrouted := nw.counter("backchannel_packets_dropped_total", "bad_next_hop", alive...)

	for i := range 10 {
		alice.cli("send", "bob", fmt.Sprintf("after: alice to bob #%d", i))
		bob.cli("send", "alice", fmt.Sprintf("after: bob to alice #%d", i))
	}
	for _, c := range []*clientProc{alice, bob} {
		out := c.cli("status", "--wait", "--timeout", "2m")
		t.Logf("%s: %s", c.name, lastLines(out, 4))
	}
	for _, pair := range [][2]*clientProc{{alice, bob}, {bob, alice}} {
		texts := pair[1].inboxTexts(t.TempDir())
		for _, round := range []string{"while listed", "after"} {
			for i := range 10 {
				if want := fmt.Sprintf("%s: %s to %s #%d", round, pair[0].name, pair[1].name, i); texts[want] != 1 {
					t.Fatalf("%s's inbox has %q %d times, want once", pair[1].name, want, texts[want])
				}
			}
		}
	}
	if now := nw.counter("backchannel_packets_dropped_total", "bad_next_hop", alive...); now != misrouted {
		t.Fatalf("%v packets were routed to mix-2-a after the document dropped it", now-misrouted)
	}
	if held == 0 {
		t.Fatal("no node held packets for mix-2-a while it was down (was it on any route?)")
	}
	t.Logf("the nodes before mix-2-a dropped %v packets held for it when they closed their links; none routed to it since", held)
}

// behindProxies puts every node of a generated network behind a faultnet
// proxy: the proxy takes the node's published address (in the document,
// where peers and clients dial it) and the node listens on another
// (node.toml's listen), so that every link of the network crosses one.
func behindProxies(t *testing.T, nw *network, faults func(node string) faultnet.Faults) map[string]*faultnet.Proxy {
	t.Helper()
	listen := freeAddresses(t, len(nw.doc.Nodes))
	proxies := map[string]*faultnet.Proxy{}
	for i, n := range nw.doc.Nodes {
		editNodeConfig(t, filepath.Join(nw.dir, n.Name, "node.toml"), func(c *config.Node) { c.Node.Listen = listen[i] })
		p, err := faultnet.Listen(n.Address, listen[i], faults(n.Name), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies[n.Name] = p
	}
	return proxies
}

// pause stops a node's process with SIGSTOP for d, then lets it go on: a
// host that hangs (swapping, a VM paused) rather than crashes.
func (nw *network) pause(name string, d time.Duration) {
	p := nw.procs[name].Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		nw.t.Fatalf("stopping %s: %v", name, err)
	}
	time.Sleep(d) // the length of the fault, not a wait for an event
	if err := p.Signal(syscall.SIGCONT); err != nil {
		nw.t.Fatalf("continuing %s: %v", name, err)
	}
}

// TestUnreliableLinks: every link of the network — client to provider,
// provider to mix, mix to mix, mix to provider — crosses a proxy that adds
// 10–30 ms of latency, narrows it to 2 MiB/s, flips a bit in one chunk of
// 300 (which the link's authenticated encryption detects, so the link fails, as it
// would on a lossy path TCP cannot repair), and resets every connection
// after about a megabyte. Meanwhile the only mix of layer 2 and then bob's
// provider hang for three seconds each (SIGSTOP). Two users send 30
// messages each way: every one is delivered exactly once.
func TestUnreliableLinks(t *testing.T) {
	nw := generateNetwork(t, binPath, 1, map[string][]string{"testnet": clientParameters})
	proxies := behindProxies(t, nw, func(string) faultnet.Faults {
		return faultnet.Faults{
			Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, BytesPerSecond: 2 << 20,
			Corrupt: 1.0 / 300, ResetAfter: 1 << 20,
		}
	})
	t.Cleanup(nw.stopAll)
	for _, n := range nw.doc.Nodes {
		nw.start(n.Name)
	}
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)

	const each = 30
	for i := range each {
		alice.cli("send", "bob", fmt.Sprintf("alice to bob %d", i))
		bob.cli("send", "alice", fmt.Sprintf("bob to alice %d", i))
		switch i {
		case each / 3:
			nw.pause("mix-2-a", 3*time.Second)
		case 2 * each / 3:
			nw.pause("provider-b", 3*time.Second)
		}
	}
	deliveredEachWay(t, alice, bob, each, "4m")

	var total faultnet.Stats
	for _, p := range proxies {
		s := p.Stats()
		total.Connections += s.Connections
		total.Bytes += s.Bytes
		total.Corrupted += s.Corrupted
		total.Resets += s.Resets
	}
	if total.Resets == 0 || total.Corrupted == 0 {
		t.Fatalf("the proxies made no faults: %+v", total)
	}
	linkErrors := nw.counter("backchannel_link_errors_total", "", nw.names()...)
	t.Logf("proxies: %d connections, %d MiB, %d chunks corrupted, %d connections reset; the nodes counted %v link errors",
		total.Connections, total.Bytes>>20, total.Corrupted, total.Resets, linkErrors)
}

// crash ends the user's daemon with SIGKILL, as a power cut would.
func (c *clientProc) crash() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
}

// TestEveryKindKilledMidTraffic: while two users keep writing, one process
// of each kind is SIGKILLed and restarted in turn — an authority, the mix
// of layer 2, bob's provider, alice's client daemon (with messages queued
// and unacknowledged), alice's provider, bob's client daemon — each with
// messages in flight. Then a second authority is killed for good: the
// network's next documents now need the restarted one's signature (two of
// three), and nodes and clients move to them. Every message sent is
// delivered exactly once.
func TestEveryKindKilledMidTraffic(t *testing.T) {
	const epoch = 10 * time.Second
	nw, authorities := authorityNetwork(t, 1, 3, 2, epoch)
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)

	users := map[string]*clientProc{"alice": alice, "bob": bob}
	sent := 0
	for _, victim := range []string{"authority-1", "mix-2-a", "provider-b", "alice", "provider-a", "bob"} {
		for range 5 {
			alice.cli("send", "bob", fmt.Sprintf("alice to bob %d", sent))
			bob.cli("send", "alice", fmt.Sprintf("bob to alice %d", sent))
			sent++
		}
		switch c := users[victim]; {
		case victim == "authority-1":
			authorities.procs[0].Process.Signal(syscall.SIGKILL)
			authorities.procs[0].Wait()
			authorities.launch(0)
			authorities.waitRunning(0)
		case c != nil:
			c.crash()
			c.start()
		default:
			nw.kill(victim, syscall.SIGKILL)
			nw.start(victim)
		}
		t.Logf("%s killed and restarted after %d messages each way", victim, sent)
	}

	// Without authority-2, documents need authority-1's signature.
	authorities.procs[1].Process.Signal(syscall.SIGKILL)
	authorities.procs[1].Wait()
	next := uint64(nw.counter("backchannel_epoch", "", "provider-a")) + 2
	for _, name := range nw.names() {
		if err := nw.outputs[name].waitFor(0, 3*epoch, "new epoch", fmt.Sprintf("epoch=%d ", next)); err != nil {
			t.Fatalf("%s did not move to epoch %d after authority-2 went: %v", name, next, err)
		}
	}
	for _, c := range []*clientProc{alice, bob} {
		if err := c.out.waitFor(0, epoch, "new network epoch", fmt.Sprintf("epoch=%d ", next)); err != nil {
			t.Fatalf("%s did not move to epoch %d: %v", c.name, next, err)
		}
	}
	if err := authorities.outputs[0].waitFor(0, time.Second, "msg=published", fmt.Sprintf("epoch=%d ", next)); err != nil {
		t.Fatalf("the restarted authority-1 did not publish epoch %d: %v", next, err)
	}

	deliveredEachWay(t, alice, bob, sent, "3m")
}

// deliveredEachWay waits (up to timeout) until each of a and b has every
// message it sent acknowledged, n each, and checks that "<a> to <b> i"
// and "<b> to <a> i" for i below n each arrived exactly once.
func deliveredEachWay(t *testing.T, a, b *clientProc, n int, timeout string) {
	t.Helper()
	for _, c := range []*clientProc{a, b} {
		out := c.cli("status", "--wait", "--timeout", timeout)
		if got := deliveredCount(out); got != n {
			t.Fatalf("%s: %d messages delivered of %d:\n%s", c.name, got, n, out)
		}
		t.Logf("%s: %s", c.name, lastLines(out, 4))
	}
	saved := t.TempDir()
	b.eachOnce(saved, a.name+" to "+b.name, n)
	a.eachOnce(saved, b.name+" to "+a.name, n)
}
