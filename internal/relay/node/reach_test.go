package node

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestUnreachableNextHop: a mix is down while provider-a has a packet for
// it. After three failed attempts in a row provider-a says so once, as a
// warning, and counts it in backchannel_next_hops_unreachable; when the
// mix comes back the gauge returns to zero, the return is said, and the
// packet held meanwhile is delivered.
func TestUnreachableNextHop(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{29}))
	tn := newTestNet(t, rng)
	var logs lockedBuffer
	tn.restart(t, 0, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	provider := tn.nodes[0]
	down := 2 // mix-1-a
	name := tn.doc.Nodes[down].Name
	tn.stopNode(down)

	// A route through the mix that is down.
	path := tn.path(rng, "bob")
	path[1] = sphinx.PathHop{ID: tn.doc.Nodes[down].ID(), PublicKey: tn.doc.Nodes[down].SphinxKey, Commands: path[1].Commands}
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	packet, err := f.NewPacket(testrand.Reader{Rand: rng}, path, binary.BigEndian.AppendUint32(nil, 7))
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	if _, err := alice.Send(packet); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "provider-a to count the mix unreachable", func() bool {
		return counter(t, provider, "backchannel_next_hops_unreachable", "") == 1
	})
	if n := strings.Count(logs.String(), "next hop unreachable"); n != 1 {
		t.Fatalf("the next hop was said unreachable %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), name) {
		t.Fatalf("no warning naming %s:\n%s", name, logs.String())
	}

	tn.restart(t, down, func(*Config) {})
	waitFor(t, "the gauge to return to zero", func() bool {
		return counter(t, provider, "backchannel_next_hops_unreachable", "") == 0
	})
	if got := receive(t, bob, 1, 30*time.Second); got[7] != 1 {
		t.Fatalf("the packet held for the mix arrived %d times", got[7])
	}
	if !strings.Contains(logs.String(), "next hop reachable again") {
		t.Fatalf("the return is not said:\n%s", logs.String())
	}
}
