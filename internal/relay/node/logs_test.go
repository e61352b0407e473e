package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// lockedBuffer is a log destination shared by several nodes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogsHoldNoClientSecrets runs the network with every node logging at
// debug level while clients connect, send, fetch, and strangers fail a
// handshake or send garbage; then no log line holds a client's address,
// link key or mailbox id, nor any node's secret key (as Tor's
// SafeLogging).
func TestLogsHoldNoClientSecrets(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{21}))
	tn := newTestNet(t, rng)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for i := range tn.nodes {
		tn.stopNode(i)
		ln, err := net.Listen("tcp", tn.doc.Nodes[i].Address)
		if err != nil {
			t.Fatal(err)
		}
		tn.configs[i].Listener, tn.configs[i].Logger = ln, logger
		tn.start(t, i)
	}
	f, err := sphinx.New(tn.doc.Parameters.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	for i := range 20 {
		packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), binary.BigEndian.AppendUint32(nil, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(packet); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, bob, 20, 30*time.Second)

	provider := tn.node("provider-a")
	var strangers []string
	// A client with a key the provider does not know.
	stranger, _ := wire.GenerateKeypair(testrand.Reader{Rand: rng})
	raw, err := net.Dial("tcp", provider.Address)
	if err != nil {
		t.Fatal(err)
	}
	strangers = append(strangers, raw.LocalAddr().String())
	// The initiator's side of the handshake ends first; the provider then
	// refuses the key and closes the link.
	if c, err := wire.Dial(raw, stranger, provider.LinkKey, wire.FrameSizeFor(f.Geometry().PacketLength())); err == nil {
		if _, err := c.ReadFrame(); err == nil {
			t.Fatal("the provider took a stranger's link")
		}
	}
	raw.Close()
	// Garbage instead of a handshake.
	raw, err = net.Dial("tcp", provider.Address)
	if err != nil {
		t.Fatal(err)
	}
	strangers = append(strangers, raw.LocalAddr().String())
	raw.Write(bytes.Repeat([]byte{0xff}, 4096))
	raw.Close()
	// A client that goes away in the middle of a fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	clientlink.Dial(ctx, provider.Address, tn.clients["alice"], provider.LinkKey, wire.FrameSizeFor(f.Geometry().PacketLength()), false)

	waitFor(t, "the provider logged the failed handshakes", func() bool {
		text := logs.String()
		return strings.Count(text, "inbound handshake failed") >= 1 && strings.Contains(text, "refused a link that offers no post-quantum key exchange")
	})
	text := logs.String()
	if !strings.Contains(text, "node running") {
		t.Fatalf("nothing logged:\n%s", text)
	}
	forbidden := map[string]string{}
	for _, a := range strangers {
		forbidden[a] = "a client's address"
		_, port, _ := net.SplitHostPort(a)
		if regexp.MustCompile(`:` + port + `\b`).MatchString(text) {
			t.Errorf("the logs hold a client's port (%s)", port)
		}
	}
	for name, key := range tn.clients {
		forbidden[hex.EncodeToString(key.Public)] = name + "'s link key"
		id := tn.mailboxes[name]
		forbidden[hex.EncodeToString(id[:])] = name + "'s mailbox id"
		forbidden[hex.EncodeToString(id[:8])] = name + "'s mailbox id (prefix)"
	}
	for i, c := range tn.configs {
		forbidden[hex.EncodeToString(tn.sphinxSecrets[i][:])] = tn.doc.Nodes[i].Name + "'s Sphinx key"
		forbidden[hex.EncodeToString(c.LinkKey.Private)] = tn.doc.Nodes[i].Name + "'s link key"
		forbidden[hex.EncodeToString(c.Identity.Seed())] = tn.doc.Nodes[i].Name + "'s identity key"
	}
	for s, what := range forbidden {
		if strings.Contains(text, s) {
			t.Errorf("the logs hold %s (%s)", what, s)
		}
	}
}
