package node

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
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
	_, c := tn.rawConn(t, client, provider, rcvbuf)
	return c
}

// rawConn is rawLink with its socket, for a test that writes bytes no
// frame would.
func (tn *testNet) rawConn(t *testing.T, client, provider string, rcvbuf int) (net.Conn, *wire.Conn) {
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
	return conn, c
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

// TestSlowReaderLosesOnlyItsLink: a link of bob's asks for its mailbox (or
// for the network document) again and again and never reads the replies.
// The provider's writes to it time out and it closes that link, counted as
// a slow reader; alice's packets to bob are stored and fetched over his
// ordinary link all along.
func TestSlowReaderLosesOnlyItsLink(t *testing.T) {
	fetch, _ := wire.FetchRequest{}.MarshalBinary()
	for i, req := range []wire.Frame{
		{Type: wire.FrameFetch, Body: fetch},
		{Type: wire.FrameDocumentRequest},
	} {
		t.Run(req.Type.String(), func(t *testing.T) {
			rng := rand.New(rand.NewChaCha8([32]byte{22, byte(i)}))
			tn := newTestNet(t, rng)
			tn.restart(t, 1, func(c *Config) {
				c.LinkWriteTimeout = 300 * time.Millisecond
				c.SignedDocument = make([]byte, 64<<10) // what the provider hands out (tests have none)
			})
			provider := tn.nodes[1]
			slow := tn.rawLink(t, "bob", "provider-b", 4096)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for ctx.Err() == nil {
					if err := slow.WriteFrame(req); err != nil {
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
		})
	}
}

// TestConnectionFlood: more connections than the provider lets into their
// handshakes at once are opened and left silent (the cap per source is
// raised, so that the handshake slots are what is tested; sources are
// TestIdleFloodDoesNotLockOut's). The excess is closed at once and
// counted; links already up keep their service; once the silent
// connections go, a client connects again.
func TestConnectionFlood(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{23}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, func(c *Config) { c.LinksPerSource = 10 * maxHandshakes })
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

// TestIdleFloodDoesNotLockOut: one address (127.0.0.2) opens idle
// connections to a provider, 200 a second, for the whole test, each held
// until the provider closes it. Meanwhile a real client connects, and a
// node (a mix, with its link key) connects, five times each from another
// address: every handshake succeeds within 2 s, and packets still reach
// their mailbox. Without the cap per source the flood holds every
// handshake slot and the handshakes fail (checked by raising
// LinksPerSource to 100,000: RELIABILITY.md).
func TestIdleFloodDoesNotLockOut(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{24}))
	tn := newTestNet(t, rng)
	provider := tn.nodes[1]
	addr := tn.node("provider-b").Address
	stop := make(chan struct{})
	var flood sync.WaitGroup
	flood.Add(1)
	go func() {
		defer flood.Done()
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				continue
			}
			flood.Add(1)
			go func() { // held, silent, until the provider (or the test's end) closes it
				defer flood.Done()
				go func() { <-stop; c.Close() }()
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { close(stop); flood.Wait() })
	waitFor(t, "the flooding address to reach its cap", func() bool {
		return counter(t, provider, "backchannel_link_errors_total", "per_source") > 0
	})

	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	frame := wire.FrameSizeFor(f.Geometry().PacketLength())
	p := tn.node("provider-b")
	var mix *Config
	for i := range tn.doc.Nodes {
		if tn.doc.Nodes[i].Role == directory.RoleMix && tn.doc.Nodes[i].Layer == 3 {
			mix = &tn.configs[i]
		}
	}
	for round := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		l, err := clientlink.Dial(ctx, addr, tn.clients["bob"], p.LinkKey, frame, false)
		cancel()
		if err != nil {
			t.Fatalf("round %d: bob could not connect within 2 s during the flood: %v", round, err)
		}
		l.Close()
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("round %d: a mix could not connect: %v", round, err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		c, err := wire.Dial(conn, mix.LinkKey, p.LinkKey, frame)
		if err != nil {
			t.Fatalf("round %d: a mix's handshake failed within 2 s during the flood: %v", round, err)
		}
		c.Close()
	}
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	tn.sendNumbered(t, rng, alice, "bob", 0, 10)
	if got := receive(t, bob, 10, 30*time.Second); len(got) != 10 {
		t.Fatalf("bob received %d of 10 during the flood", len(got))
	}
	t.Logf("connections refused for their source: %.0f; for the handshake slots: %.0f",
		counter(t, provider, "backchannel_link_errors_total", "per_source"),
		counter(t, provider, "backchannel_link_errors_total", "handshake_limit"))
}
