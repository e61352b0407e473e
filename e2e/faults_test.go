package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/directory"
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
// writing. The documents already made list it for the epochs its
// descriptors were uploaded for (the next two), and packets routed through
// it in that time are lost and retransmitted; the first document without it
// is published by the authority on its own (nobody tells it the mix is
// down: the mix uploads nothing more), the clients move to it and route
// around it, and once the previous epoch's grace period is over the mixes
// before it close their links to it and drop what they held for it.
// Afterwards no packet is routed to it (counted at the layer before it as
// bad_next_hop), and every message, before and after, is delivered exactly
// once.
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

	// The first document that leaves it out.
	var without uint64
	for e := killed + 1; e <= killed+4 && without == 0; e++ {
		doc, err := directory.Verify(authorities.document(0, e), nw.trust, time.Now().Add(2*epoch))
		if err != nil {
			t.Fatalf("the document of epoch %d: %v", e, err)
		}
		if doc.Node(down.IdentityKey) == nil {
			without = e
		}
	}
	if without == 0 {
		t.Fatalf("mix-2-a, down since epoch %d, is still in the document of epoch %d", killed, killed+4)
	}
	t.Logf("the document of epoch %d is the first without mix-2-a", without)
	for _, c := range []*clientProc{alice, bob} {
		if err := c.out.waitFor(0, 2*epoch, "new network epoch", fmt.Sprintf("epoch=%d ", without)); err != nil {
			t.Fatalf("%s did not move to epoch %d: %v", c.name, without, err)
		}
	}
	before := []string{"mix-1-a", "mix-1-b"}
	for _, name := range before {
		if err := nw.outputs[name].waitFor(0, 2*epoch, "not in the network document any more", "peer=mix-2-a"); err != nil {
			t.Fatalf("%s did not close its link to mix-2-a: %v", name, err)
		}
	}
	held := nw.counter("backchannel_packets_dropped_total", "next_hop_left", before...)
	misrouted := nw.counter("backchannel_packets_dropped_total", "bad_next_hop", before...)

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
	if now := nw.counter("backchannel_packets_dropped_total", "bad_next_hop", before...); now != misrouted {
		t.Fatalf("%v packets were routed to mix-2-a after the document dropped it", now-misrouted)
	}
	if held == 0 {
		t.Fatal("the layer before mix-2-a held no packets for it while it was down (was it on any route?)")
	}
	t.Logf("the mixes of layer 1 dropped %v packets held for mix-2-a when they closed their links; none routed to it since", held)
}
