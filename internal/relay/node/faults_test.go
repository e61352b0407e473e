package node

import (
	"bytes"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/testrand"

	dto "github.com/prometheus/client_model/go"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// counter reads a counter or gauge of a node's registry (with label
// reason or kind equal to label, if given).
func counter(t *testing.T, n *Node, name, label string) float64 {
	t.Helper()
	v, ok := metricValue(t, n, name, label)
	if !ok {
		t.Fatalf("no metric %s{%s}", name, label)
	}
	return v
}

// metricValue is counter's lookup; ok is false if no such metric exists
// (yet: a counter with labels appears at its first increment).
func metricValue(t *testing.T, n *Node, name, label string) (v float64, ok bool) {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if label == "" || hasLabel(m, label) {
				if g := m.GetGauge(); g != nil {
					return g.GetValue(), true
				}
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == value {
			return true
		}
	}
	return false
}

// waitFor polls cond (which reads counters: there is no event to wait on
// from outside the node) until it holds or the bounded time runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplayAndTamperDropped checks that a replayed packet is dropped and
// counted, also after the node restarts, and that a packet with one flipped
// bit is dropped and counted.
func TestReplayAndTamperDropped(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	tn := newTestNet(t, rng)
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	providerA := tn.nodes[0]
	alice := tn.dial(t, "alice", "provider-a")
	bob := tn.dial(t, "bob", "provider-b")

	packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), []byte{0, 0, 0, 7})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := alice.Send(bytes.Clone(packet)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the replay to be counted", func() bool { return counter(t, providerA, "backchannel_packets_dropped_total", dropReplay) == 1 })
	if got := receive(t, bob, 1, 20*time.Second); got[7] != 1 {
		t.Fatalf("deliveries: %v", got)
	}

	tampered := bytes.Clone(packet)
	tampered[100] ^= 0x10
	if _, err := alice.Send(tampered); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tampered packet to be counted", func() bool { return counter(t, providerA, "backchannel_packets_dropped_total", dropMAC) == 1 })

	// Restart provider-a on the same address and data directory: the
	// replay is still refused.
	tn.stopNode(0)
	ln, err := net.Listen("tcp", tn.doc.Nodes[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	tn.configs[0].Listener = ln
	tn.start(t, 0)
	alice = tn.dial(t, "alice", "provider-a")
	if _, err := alice.Send(bytes.Clone(packet)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay after restart to be counted", func() bool {
		return counter(t, tn.nodes[0], "backchannel_packets_dropped_total", dropReplay) == 1
	})
	if n := counter(t, tn.nodes[0], "backchannel_packets_delivered_total", ""); n != 0 {
		t.Fatal("the provider delivered something")
	}
}

// TestMalformedFrameClosesOnlyThatLink checks that a peer sending garbage
// loses its link while the node keeps serving others.
func TestMalformedFrameClosesOnlyThatLink(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	tn := newTestNet(t, rng)
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	providerA := tn.nodes[0]
	alice := tn.dial(t, "alice", "provider-a")
	bob := tn.dial(t, "bob", "provider-b")

	// A connection that sends no handshake at all.
	raw, err := net.Dial("tcp", tn.doc.Nodes[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write(bytes.Repeat([]byte{0xff}, 200))
	raw.Close()
	// It does not start a TLS handshake, so it is taken for a peer of
	// the previous release.
	waitFor(t, "the failed handshake to be counted", func() bool {
		return counter(t, providerA, "backchannel_link_errors_total", "classical_refused") >= 1
	})

	// A node's link (mix-1-a's key) that sends a frame that does not
	// authenticate.
	mix := tn.configs[2]
	conn, err := net.Dial("tcp", tn.doc.Nodes[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.Dial(conn, mix.LinkKey, tn.doc.Nodes[0].LinkKey, wire.FrameSizeFor(f.Geometry().PacketLength()))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write(bytes.Repeat([]byte{1}, wire.FrameSizeFor(f.Geometry().PacketLength())+16))
	waitFor(t, "the malformed frame to be counted", func() bool {
		return counter(t, providerA, "backchannel_link_errors_total", "malformed_frame") == 1
	})
	c.Close()

	// Alice's link still works.
	packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), []byte{0, 0, 0, 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(packet); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, bob, 1, 20*time.Second); got[9] != 1 {
		t.Fatalf("deliveries after the bad link: %v", got)
	}
}

// TestMixRefusesReplayAfterRestart sends a packet straight to a first-layer
// mix (as its provider would, over a link with the provider's key) twice,
// then again after the mix restarts: both replays are dropped and counted.
func TestMixRefusesReplayAfterRestart(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{4}))
	tn := newTestNet(t, rng)
	path := tn.path(rng, "bob")
	packet, mixIndex := packetForFirstMix(t, tn, rng, path, []byte{0, 0, 0, 5})
	send := func(copies int) {
		c := dialAsProvider(t, tn, mixIndex)
		defer c.Close()
		for i := range copies {
			if err := c.WriteFrame(wire.Frame{Type: wire.FramePacket, Seq: uint64(i + 1), Body: packet}); err != nil {
				t.Fatal(err)
			}
		}
		// The mix acknowledges every frame once its verdict is durable.
		for {
			ack, err := c.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if ack.Type == wire.FrameAck && ack.Seq == uint64(copies) {
				return
			}
		}
	}
	send(2)
	if n := counter(t, tn.nodes[mixIndex], "backchannel_packets_dropped_total", dropReplay); n != 1 {
		t.Fatalf("%v replays counted, want 1", n)
	}
	bob := tn.dial(t, "bob", "provider-b")
	if got := receive(t, bob, 1, 20*time.Second); got[5] != 1 {
		t.Fatalf("deliveries: %v", got)
	}

	tn.stopNode(mixIndex)
	ln, err := net.Listen("tcp", tn.doc.Nodes[mixIndex].Address)
	if err != nil {
		t.Fatal(err)
	}
	tn.configs[mixIndex].Listener = ln
	tn.start(t, mixIndex)
	send(1)
	if n := counter(t, tn.nodes[mixIndex], "backchannel_packets_dropped_total", dropReplay); n != 1 {
		t.Fatalf("after the restart: %v replays counted, want 1", n)
	}
	if n := counter(t, tn.nodes[mixIndex], "backchannel_packets_out_total", ""); n != 0 {
		t.Fatalf("the restarted mix forwarded %v packets", n)
	}
}

// TestGracefulShutdownForwardsHeldPackets stops a mix while it holds a
// packet for a 300 ms delay: the shutdown waits, forwards the packet at its
// time, and the packet arrives.
func TestGracefulShutdownForwardsHeldPackets(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{5}))
	tn := newTestNet(t, rng)
	path := tn.path(rng, "bob")
	path[1].Commands = sphinx.Commands{sphinx.NodeDelay{Milliseconds: 300}}
	packet, mixIndex := packetForFirstMix(t, tn, rng, path, []byte{0, 0, 0, 6})
	c := dialAsProvider(t, tn, mixIndex)
	defer c.Close()
	if err := c.WriteFrame(wire.Frame{Type: wire.FramePacket, Seq: 1, Body: packet}); err != nil {
		t.Fatal(err)
	}
	if ack, err := c.ReadFrame(); err != nil || ack.Type != wire.FrameAck || ack.Seq != 1 {
		t.Fatalf("no acknowledgement: %v %v", ack, err)
	}
	// The mix now holds the packet; stop it.
	tn.stopNode(mixIndex)
	bob := tn.dial(t, "bob", "provider-b")
	if got := receive(t, bob, 1, 20*time.Second); got[6] != 1 {
		t.Fatalf("deliveries: %v", got)
	}
}

// packetForFirstMix makes a packet for path carrying message and removes
// provider-a's layer, as provider-a would, returning it with the index of
// the first-layer mix it goes to.
func packetForFirstMix(t *testing.T, tn *testNet, rng *rand.Rand, path []sphinx.PathHop, message []byte) ([]byte, int) {
	t.Helper()
	f, err := sphinx.New(tn.doc.Parameters.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	packet, err := f.NewPacket(testrand.Reader{Rand: rng}, path, message)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Unwrap(tn.configs[0].SphinxKey, packet); err != nil {
		t.Fatal(err)
	}
	for i := range tn.doc.Nodes {
		if tn.doc.Nodes[i].ID() == path[1].ID {
			return packet, i
		}
	}
	t.Fatal("the path's first mix is not in the document")
	return nil, -1
}

// dialAsProvider opens a link to node i with provider-a's link key, as
// provider-a's outgoing link would.
func dialAsProvider(t *testing.T, tn *testNet, i int) *wire.Conn {
	t.Helper()
	node := &tn.doc.Nodes[i]
	conn, err := net.Dial("tcp", node.Address)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.Dial(conn, tn.configs[0].LinkKey, node.LinkKey, wire.FrameSizeFor(tn.doc.Parameters.Geometry.PacketLength()))
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return c
}
