package node

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestFormatChangeInPlace: a network of X25519 packets moves to X-Wing
// packets at an epoch boundary without a restart. During the grace period
// a packet made before the change still goes through, on the client's
// link of the old frame size and then on a new one of the new size; X-Wing
// packets go through at once, the nodes' links between them dialled again
// for larger frames (no packet dropped for want of room); once the grace
// is over, an X25519 packet is dropped. A document that changes the rest
// of the geometry is refused.
func TestFormatChangeInPlace(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{12}))
	tn := newTestNet(t, rng)
	if tn.doc.Parameters.Geometry.Scheme != sphinx.X25519 {
		t.Fatal("the test network does not start on X25519 packets")
	}
	newPacket := func(g sphinx.Geometry, i uint32) []byte {
		t.Helper()
		f, err := sphinx.New(g)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), binary.BigEndian.AppendUint32(nil, i))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldGeometry := tn.doc.Parameters.Geometry
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	for i := range uint32(20) { // every link between nodes is up, of the X25519 size
		if _, err := alice.Send(newPacket(oldGeometry, i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := receive(t, bob, 20, 30*time.Second); len(got) != 20 {
		t.Fatalf("before the change: %v", got)
	}
	madeBefore := []([]byte){newPacket(oldGeometry, 100), newPacket(oldGeometry, 101)}
	afterGrace := newPacket(oldGeometry, 102)

	newGeometry := oldGeometry
	newGeometry.Scheme = sphinx.XWing
	tn.rekeyTo(t, rng, time.Minute, newGeometry)
	if _, err := alice.Send(madeBefore[0]); err != nil {
		t.Fatal(err)
	}
	aliceNew := tn.dial(t, "alice", "provider-a") // as her client does on seeing the new format
	for i := range uint32(20) {
		if _, err := aliceNew.Send(newPacket(newGeometry, 200+i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := aliceNew.Send(madeBefore[1]); err != nil {
		t.Fatal(err)
	}
	got := receive(t, bob, 22, 30*time.Second)
	for _, i := range []uint32{100, 101} {
		if got[i] != 1 {
			t.Fatalf("packet %d, made before the change, arrived %d times during the grace period", i, got[i])
		}
	}
	for i := range uint32(20) {
		if got[200+i] != 1 {
			t.Fatalf("X-Wing packet %d arrived %d times", i, got[200+i])
		}
	}
	for i, n := range tn.nodes {
		if dropped := droppedFor(t, n, dropFrameTooSmall); dropped != 0 {
			t.Fatalf("%s dropped %v packets its links could not carry", tn.doc.Nodes[i].Name, dropped)
		}
	}

	tn.rekeyTo(t, rng, 0, newGeometry)
	// Shorter than an X-Wing header, it is dropped before any
	// cryptography.
	before := droppedFor(t, tn.nodes[0], dropTooShort)
	if _, err := aliceNew.Send(afterGrace); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the X25519 packet dropped once the grace period is over", func() bool {
		return droppedFor(t, tn.nodes[0], dropTooShort) == before+1
	})

	changed := *tn.doc
	changed.Epoch++
	changed.Parameters.Geometry.UserPayloadLength++
	key, _ := testSphinxKey(t, rng, sphinx.XWing)
	if err := tn.nodes[0].Install(nil, &changed, key, 0); err == nil {
		t.Fatal("a node took a document that changes the payload length")
	}
}

// droppedFor is how many packets n dropped for reason (none counted yet:
// zero).
func droppedFor(t *testing.T, n *Node, reason string) float64 {
	t.Helper()
	v, _ := metricValue(t, n, "backchannel_packets_dropped_total", reason)
	return v
}
