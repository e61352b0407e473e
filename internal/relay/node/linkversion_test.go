package node

import (
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// links reads backchannel_links_total for one link version and direction.
func links(t *testing.T, n *Node, version, direction string) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "backchannel_links_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["version"] == version && labels["direction"] == direction {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no backchannel_links_total{version=%q,direction=%q}", version, direction)
	return 0
}

// TestClassicalLinksUntilEpoch: a node takes a classical (version 1) link
// from a known peer only before the epoch its operators chose; from it
// (here: from the start) the link is refused and counted. Links between
// the nodes of this release are post-quantum.
func TestClassicalLinksUntilEpoch(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{40}))
	tn := newTestNet(t, rng)
	const mix = 2
	frame := wire.FrameSizeFor(tn.doc.Parameters.Geometry.PacketLength())
	dialClassical := func() (*wire.Conn, error) {
		conn, err := net.Dial("tcp", tn.doc.Nodes[mix].Address)
		if err != nil {
			t.Fatal(err)
		}
		c, err := wire.DialClassical(conn, tn.configs[0].LinkKey, tn.doc.Nodes[mix].LinkKey, frame)
		if err != nil {
			conn.Close()
		}
		return c, err
	}
	if c, err := dialClassical(); err == nil {
		// The initiator's side ends first; the refusal shows on reading.
		if _, err := c.ReadFrame(); err == nil {
			t.Fatal("a classical link was served")
		}
		c.Close()
	}
	waitFor(t, "the classical link to be refused and counted", func() bool {
		return counter(t, tn.nodes[mix], "backchannel_link_errors_total", "classical_refused") == 1
	})
	if got := links(t, tn.nodes[mix], "1", "in"); got != 0 {
		t.Fatalf("%v classical links counted as taken", got)
	}

	tn.restart(t, mix, func(c *Config) { c.ClassicalLinksUntil = tn.doc.Epoch + 1 })
	c, err := dialClassical()
	if err != nil {
		t.Fatalf("a classical link before the chosen epoch: %v", err)
	}
	defer c.Close()
	waitFor(t, "the classical link to be counted", func() bool { return links(t, tn.nodes[mix], "1", "in") == 1 })
	pq := dialAsProvider(t, tn, mix)
	defer pq.Close()
	waitFor(t, "the post-quantum link to be counted", func() bool { return links(t, tn.nodes[mix], "2", "in") == 1 })
}

// previousRelease listens as a next hop of the previous release would
// answer: a TLS handshake gets Noise bytes back (what a version 1
// responder sends after reading 32 bytes), and a classical handshake is
// served. It returns the listener's address.
func previousRelease(t *testing.T, key wire.Keypair, frame int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	classical, err := wire.NewAcceptor(key, func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			first := make([]byte, 1)
			if _, err := io.ReadFull(conn, first); err != nil {
				conn.Close()
				continue
			}
			if first[0] == 0x16 { // a TLS ClientHello
				io.ReadFull(conn, make([]byte, 31))
				conn.Write(make([]byte, 96))
				conn.Close()
				continue
			}
			c, err := classical.Accept(&prefixed{Conn: conn, first: first}, func([wire.KeySize]byte) error { return nil }, wire.OneFrameSize(frame))
			if err != nil {
				conn.Close()
				continue
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// prefixed gives back a byte already read from a connection.
type prefixed struct {
	net.Conn
	first []byte
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// TestDialNextHopOfThePreviousRelease: a next hop that answers only
// classical links is dialled so before the chosen epoch, and refused (and
// counted) from it.
func TestDialNextHopOfThePreviousRelease(t *testing.T) {
	x := newFollowFixture(t)
	key, _ := wire.GenerateKeypair(testrand.New(41))
	old := &directory.Node{Name: "old", Address: previousRelease(t, key, x.node.frameSizes().Classical)}
	copy(old.LinkKey[:], key.Public)

	if _, err := x.node.dialPeer(t.Context(), old); err == nil {
		t.Fatal("a classical link was opened with classical links ended")
	}
	if got := counter(t, x.node, "backchannel_link_errors_total", "classical_refused"); got != 1 {
		t.Fatalf("%v refused classical links counted, want 1", got)
	}
	x.node.cfg.ClassicalLinksUntil = x.node.epochs.Load().cur.doc.Epoch + 1
	c, err := x.node.dialPeer(t.Context(), old)
	if err != nil {
		t.Fatalf("dialling a next hop of the previous release before the chosen epoch: %v", err)
	}
	c.Close()
	if got := links(t, x.node, "1", "out"); got != 1 {
		t.Fatalf("%v classical links dialled, want 1", got)
	}
}
