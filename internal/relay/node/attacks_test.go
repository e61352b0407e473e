package node

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// restart restarts node i with its config changed by edit.
func (tn *testNet) restart(t *testing.T, i int, edit func(*Config)) {
	t.Helper()
	tn.stopNode(i)
	ln, err := net.Listen("tcp", tn.doc.Nodes[i].Address)
	if err != nil {
		t.Fatal(err)
	}
	tn.configs[i].Listener = ln
	edit(&tn.configs[i])
	tn.start(t, i)
}

// rawLink opens a link to a provider with a client's key, for a test to
// misbehave on; rcvbuf, if not zero, shrinks the socket's receive buffer.
func (tn *testNet) rawLink(t *testing.T, client, provider string, rcvbuf int) *wire.Conn {
	t.Helper()
	p := tn.node(provider)
	conn, err := net.Dial("tcp", p.Address)
	if err != nil {
		t.Fatal(err)
	}
	if rcvbuf > 0 {
		conn.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	c, err := wire.Dial(conn, tn.clients[client], p.LinkKey, wire.FrameSizeFor(f.Geometry().PacketLength()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendNumbered sends count packets from a client's link to a recipient,
// numbered from first.
func (tn *testNet) sendNumbered(t *testing.T, rng *rand.Rand, from interface {
	Send([]byte) (uint64, error)
}, to string, first, count int) {
	t.Helper()
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	for i := first; i < first+count; i++ {
		packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, to), binary.BigEndian.AppendUint32(nil, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := from.Send(packet); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPacketFloodFromOneClient: bob floods his provider with 3,000 packet
// frames over a link of his own; the provider takes his allowed rate and
// burst and drops the rest before any work, counted; meanwhile alice's
// packets to bob are stored and his ordinary link fetches every one.
func TestPacketFloodFromOneClient(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{21}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, func(c *Config) { c.ClientPacketRate, c.ClientPacketBurst = 50, 100 })
	provider := tn.nodes[1]
	flood := tn.rawLink(t, "bob", "provider-b", 0)
	go func() { // the acknowledgements, read so that only the flood is tested
		for {
			if _, err := flood.ReadFrame(); err != nil {
				return
			}
		}
	}()
	junk := make([]byte, flood.FrameSize()-64)
	for seq := uint64(1); seq <= 3000; seq++ {
		testrand.Reader{Rand: rng}.Read(junk)
		if err := flood.WriteFrame(wire.Frame{Type: wire.FramePacket, Seq: seq, Body: junk}); err != nil {
			t.Fatalf("flood frame %d: %v", seq, err)
		}
	}
	waitFor(t, "the flood to be dropped at bob's rate", func() bool {
		return counter(t, provider, "backchannel_packets_dropped_total", "client_rate_limit") >= 2000
	})

	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	tn.sendNumbered(t, rng, alice, "bob", 0, 20)
	got := receive(t, bob, 20, 30*time.Second)
	for i := range 20 {
		if got[uint32(i)] != 1 {
			t.Fatalf("alice's packet %d reached bob %d times during bob's flood", i, got[uint32(i)])
		}
	}
}

// TestSlowReaderLosesOnlyItsLink: a link of bob's asks for its mailbox
// again and again and never reads the replies. The provider's writes to it
// time out and it closes that link, counted as a slow reader; alice's
// packets to bob are stored and fetched over his ordinary link all along.
func TestSlowReaderLosesOnlyItsLink(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{22}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, func(c *Config) { c.LinkWriteTimeout = 300 * time.Millisecond })
	provider := tn.nodes[1]
	slow := tn.rawLink(t, "bob", "provider-b", 4096)
	fetch, _ := wire.FetchRequest{}.MarshalBinary()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := slow.WriteFrame(wire.Frame{Type: wire.FrameFetch, Body: fetch}); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the slow reader's link to be closed", func() bool {
		return counter(t, provider, "backchannel_link_errors_total", "slow_reader") >= 1
	})
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	tn.sendNumbered(t, rng, alice, "bob", 0, 20)
	if got := receive(t, bob, 20, 30*time.Second); len(got) != 20 {
		t.Fatalf("bob received %d of 20 beside his slow link", len(got))
	}
}

// TestConnectionFlood: more connections than the provider lets into their
// handshakes at once are opened and left silent. The excess is closed at
// once and counted; links already up keep their service; once the silent
// connections go, a client connects again.
func TestConnectionFlood(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{23}))
	tn := newTestNet(t, rng)
	provider := tn.nodes[1]
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	var silent []net.Conn
	for range maxHandshakes + 50 {
		c, err := net.Dial("tcp", tn.node("provider-b").Address)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	waitFor(t, "the connections beyond the limit to be refused", func() bool {
		return counter(t, provider, "backchannel_link_errors_total", "handshake_limit") >= 50
	})
	tn.sendNumbered(t, rng, alice, "bob", 0, 10)
	if got := receive(t, bob, 10, 30*time.Second); len(got) != 10 {
		t.Fatalf("bob received %d of 10 during the flood", len(got))
	}
	for _, c := range silent {
		c.Close()
	}
	again := tn.dial(t, "bob", "provider-b")
	tn.sendNumbered(t, rng, alice, "bob", 10, 5)
	if got := receive(t, again, 5, 30*time.Second); len(got) != 5 {
		t.Fatalf("bob's new link received %d of 5 after the flood", len(got))
	}
}
