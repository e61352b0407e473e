package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEpochsWithAuthorities runs a network that follows its authorities:
// three authority processes with a threshold of two, three layers of two
// mixes and two providers, each a process, with 12-second epochs. Two
// users keep messages going while the network moves through three epoch
// changes: every node uploads its descriptors, fetches each document and
// moves to it; the clients follow through their providers; packets made
// with the previous epoch's keys during the grace period still go through
// (and are counted as such); every message is delivered exactly once.
// One authority is killed after the first change: the two left still
// produce the documents. Then the other two are killed: nodes and clients
// keep the current document until it ends, then say so.
func TestEpochsWithAuthorities(t *testing.T) {
	const epoch = 12 * time.Second
	nw, authorities := authorityNetwork(t, 2, 3, 2, epoch)
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)

	first := nw.doc.Epoch
	const perEpoch = 10
	sent := 0
	for change := uint64(1); change <= 3; change++ {
		for i := range perEpoch {
			alice.cli("send", "bob", fmt.Sprintf("alice to bob %d", sent+i))
			bob.cli("send", "alice", fmt.Sprintf("bob to alice %d", sent+i))
		}
		sent += perEpoch
		want := first + change
		for _, n := range nw.doc.Nodes {
			if err := nw.outputs[n.Name].waitFor(0, 3*epoch, "new epoch", fmt.Sprintf("epoch=%d ", want)); err != nil {
				t.Fatalf("%s did not move to epoch %d: %v", n.Name, want, err)
			}
		}
		for _, c := range []*clientProc{alice, bob} {
			if err := c.out.waitFor(0, epoch, "new network epoch", fmt.Sprintf("epoch=%d ", want)); err != nil {
				t.Fatalf("%s did not move to epoch %d: %v", c.name, want, err)
			}
		}
		t.Logf("every node and client is in epoch %d", want)
		if change == 1 {
			authorities.procs[2].Process.Signal(syscall.SIGKILL)
			authorities.procs[2].Wait()
			t.Log("authority-3 killed")
		}
	}
	deliveredEachWay(t, alice, bob, sent, "2m")
	var names []string
	for _, n := range nw.doc.Nodes {
		names = append(names, n.Name)
	}
	grace := nw.counter("backchannel_grace_unwraps_total", "", names...)
	if grace == 0 {
		t.Fatal("no packet made with a previous epoch's key went through during a grace period")
	}
	t.Logf("%d messages each way over 3 epoch changes; %v packets taken with the previous epoch's key during grace periods", sent, grace)

	// Every authority down: no more documents. The current one is used
	// until it ends (plus the allowed skew), then nodes and clients say so.
	for _, p := range authorities.procs[:2] {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
	}
	for _, n := range nw.doc.Nodes {
		if err := nw.outputs[n.Name].waitFor(0, 4*epoch, "the network document has ended"); err != nil {
			t.Fatalf("%s did not say its document ended: %v", n.Name, err)
		}
	}
	for _, c := range []*clientProc{alice, bob} {
		if err := c.out.waitFor(0, 2*epoch, "no current network document"); err != nil {
			t.Fatalf("%s did not say its document ended: %v", c.name, err)
		}
		if out := c.cli("status"); !strings.Contains(out, "network document: the network document of epoch") {
			t.Fatalf("%s's status does not tell:\n%s", c.name, out)
		}
	}
	if v := nw.counter("backchannel_document_expired", "", "provider-a"); v != 1 {
		t.Fatalf("provider-a's backchannel_document_expired = %v", v)
	}
}
