package client

import (
	"bytes"
	"fmt"
	"path/filepath"
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
	alice.cfg.MaxAttempts = 100 // the test's 40 attempts, not the default's failure
	ct := alice.byName("bob")
	ct.mu.Lock()
	if err := alice.startSession(ct, clk.Now()); err != nil {
		t.Fatal(err)
	}
	ct.rec.Session.Confirmed = true // bob's ack of the hello is not simulated
	ct.mu.Unlock()
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
	c.mu.Unlock()
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
	format := p.alice.format
	packet = bytes.Clone(packet)
	node := p.doc.Node(p.doc.Providers()[0].IdentityKey) // alice's provider
	var mixes []string
	for range 8 {
		key, err := keyfile.ReadX25519(filepath.Join(p.netDir, node.Name, "sphinx-keys", fmt.Sprintf("sphinx-epoch-%d.key", p.doc.Epoch)), keyfile.Sphinx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := format.Unwrap(&key, packet)
		if err != nil {
			t.Fatalf("unwrapping at %s: %v", node.Name, err)
		}
		next, ok := res.Commands.NextHop()
		if !ok {
			return mixes
		}
		node = nodeByID(p.doc, next.ID)
		if node.Role == directory.RoleMix {
			mixes = append(mixes, node.Name)
		}
	}
	t.Fatal("a route longer than the network")
	return nil
}

func nodeByID(doc *directory.Document, id sphinx.NodeID) *directory.Node {
	for i := range doc.Nodes {
		if doc.Nodes[i].ID() == id {
			return &doc.Nodes[i]
		}
	}
	return nil
}
