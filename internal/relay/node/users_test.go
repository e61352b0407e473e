package node

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// closedByPeer reports whether a read from c ends because the other side
// closed the link (not because the read waited 10 s).
func closedByPeer(t *testing.T, c *wire.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, err := c.ReadFrame()
		if err == nil {
			continue // acknowledgements and replies still in flight
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// TestLinksPerUser: a user's links beyond LinksPerUser close the oldest,
// so that links a client forgot cannot lock it out; the newest serve.
func TestLinksPerUser(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{25}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, func(c *Config) { c.LinksPerUser = 2 })
	provider := tn.nodes[1]
	first := tn.rawLink(t, "bob", "provider-b", 0)
	tn.rawLink(t, "bob", "provider-b", 0)
	third := tn.dial(t, "bob", "provider-b") // the third link: the first goes
	if !closedByPeer(t, first) {
		t.Fatal("the oldest of three links stayed open with a cap of two")
	}
	if got := counter(t, provider, "backchannel_link_errors_total", "replaced"); got != 1 {
		t.Fatalf("%v links counted as replaced, want 1", got)
	}
	alice := tn.dial(t, "alice", "provider-a")
	tn.sendNumbered(t, rng, alice, "bob", 0, 5)
	if got := receive(t, third, 5, 30*time.Second); len(got) != 5 {
		t.Fatalf("the newest link received %d of 5", len(got))
	}
}

// TestIdleClientLinkClosed: a client link that sends half a frame and
// stops is closed after the idle timeout, and counted.
func TestIdleClientLinkClosed(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{26}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, func(c *Config) { c.ClientIdleTimeout = 300 * time.Millisecond })
	conn, c := tn.rawConn(t, "bob", "provider-b", 0)
	// The start of a TLS record (application data, 1,000 bytes) carrying a
	// frame, never finished.
	conn.Write(append([]byte{0x17, 0x03, 0x03, 0x03, 0xe8}, make([]byte, 10)...))
	if !closedByPeer(t, c) {
		t.Fatal("a link with a half-sent frame stayed open past the idle timeout")
	}
	waitFor(t, "the idle link to be counted", func() bool {
		return counter(t, tn.nodes[1], "backchannel_link_errors_total", "idle") == 1
	})
}

// TestRequestsUnderTheRateLimit: fetches and retention changes are under
// the user's request limit; a client that goes past it loses its link
// before the provider does the work (no mailbox read, no fsync).
func TestRequestsUnderTheRateLimit(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{27}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, withPollInterval(time.Second))
	limits := limitsFor(tn.nodes[1].epochs.Load().cur.doc.Parameters, tn.configs[1])
	for _, req := range []struct {
		name  string
		frame wire.Frame
	}{
		{"fetch", wire.Frame{Type: wire.FrameFetch, Body: must(wire.FetchRequest{}.MarshalBinary())}},
		{"retention", wire.Frame{Type: wire.FrameRetention, Body: must(wire.Retention{Seconds: 3600}.MarshalBinary())}},
	} {
		t.Run(req.name, func(t *testing.T) {
			c := tn.rawLink(t, "bob", "provider-b", 0)
			go func() { // replies and acknowledgements, read until the link closes
				for {
					if _, err := c.ReadFrame(); err != nil {
						return
					}
				}
			}()
			before := counter(t, tn.nodes[1], "backchannel_link_errors_total", "request_rate")
			// Twice the burst, as fast as the link takes them.
			for range 2 * limits.requestBurst {
				if err := c.WriteFrame(req.frame); err != nil {
					break // closed: the limit acted
				}
			}
			waitFor(t, "the flooding link to be closed for its rate", func() bool {
				return counter(t, tn.nodes[1], "backchannel_link_errors_total", "request_rate") > before
			})
		})
	}
}

// TestMailboxInflowLimited: a mailbox takes in no more than its rate and
// burst, however many senders flood it; the rest is dropped and counted.
// (provider-b is told the poll interval is a second, so that its mailbox
// rate is the default network's: 16 a second, a burst of 160.)
func TestMailboxInflowLimited(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{28}))
	tn := newTestNet(t, rng)
	tn.restart(t, 1, withPollInterval(time.Second))
	provider := tn.nodes[1]
	limits := limitsFor(provider.epochs.Load().cur.doc.Parameters, tn.configs[1])
	alice := tn.dial(t, "alice", "provider-a")
	const flood = 600
	// The packets are made first, so that the time they take to send is
	// the network's, not their creation's (slow under the race detector).
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	var packets [][]byte
	for i := range flood {
		p, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), binary.BigEndian.AppendUint32(nil, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, p)
	}
	start := time.Now()
	for _, p := range packets {
		if _, err := alice.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every packet to be stored or dropped at provider-b", func() bool {
		return counter(t, provider, "backchannel_packets_delivered_total", "")+
			counter(t, provider, "backchannel_packets_dropped_total", dropMailboxRate) >= flood
	})
	allowed := float64(limits.mailboxBurst) + float64(limits.mailboxRate)*time.Since(start).Seconds()
	stored, err := provider.provider.mailbox.Count(mailbox.ID(tn.mailboxes["bob"]))
	if err != nil {
		t.Fatal(err)
	}
	if float64(stored) > allowed || stored < limits.mailboxBurst || stored == flood {
		t.Fatalf("bob's mailbox took %d of %d packets; its burst and rate allow %.0f", stored, flood, allowed)
	}
	t.Logf("stored %d of %d (burst %d, %v/s)", stored, flood, limits.mailboxBurst, limits.mailboxRate)
}

// TestLimitsFollowTheDocument: the limits of the default network.
func TestLimitsFollowTheDocument(t *testing.T) {
	p := directory.Parameters{SendRate: 2, LoopRate: 0.5, DropRate: 0.5, PollInterval: time.Second}
	l := limitsFor(p, Config{})
	if l.packetRate != 6 || l.packetBurst != 60 {
		t.Errorf("packets: %v/s, burst %d; want twice a client's 3/s, ten seconds' burst", l.packetRate, l.packetBurst)
	}
	if l.requestRate != rate.Limit(2*wire.MaxFetchesPerPoll+1) {
		t.Errorf("requests: %v/s, want twice %d fetches a second and one", l.requestRate, wire.MaxFetchesPerPoll)
	}
	if drain := wire.FetchBatch * wire.MaxFetchesPerPoll; float64(l.mailboxRate) != float64(drain)/2 {
		t.Errorf("mailbox: %v/s, want half the %d/s a client drains", l.mailboxRate, drain)
	}
	if l := limitsFor(p, Config{ClientPacketRate: 50, ClientPacketBurst: 70}); l.packetRate != 50 || l.packetBurst != 70 {
		t.Errorf("the configured packet rate is not used: %v/s, burst %d", l.packetRate, l.packetBurst)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// withPollInterval gives a restarted node a copy of the document with
// another poll interval (the one its limits derive from).
func withPollInterval(d time.Duration) func(*Config) {
	return func(c *Config) {
		doc := *c.Document
		doc.Parameters.PollInterval = d
		c.Document = &doc
	}
}
