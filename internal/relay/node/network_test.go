package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// testNet is a whole network in one process: each node with its own
// listener on loopback, talking over real sockets.
type testNet struct {
	doc       *directory.Document
	configs   []Config
	nodes     []*Node
	accounts  map[string]string // provider name → account file
	clients   map[string]wire.Keypair
	mailboxes map[string]mailbox.ID
	running   []running
	// sphinxSecrets are the nodes' current Sphinx key secrets, for the
	// tests that look for them where they must not be.
	sphinxSecrets [][sphinx.SecretLength]byte
}

// testSphinxKey makes a node's Sphinx key of scheme s from rng, and returns
// it with its secret.
func testSphinxKey(t *testing.T, rng *rand.Rand, s sphinx.Scheme) (*sphinx.PrivateKey, [sphinx.SecretLength]byte) {
	t.Helper()
	var secret [sphinx.SecretLength]byte
	testrand.Reader{Rand: rng}.Read(secret[:])
	key, err := sphinx.NewPrivateKey(s, &secret)
	if err != nil {
		t.Fatal(err)
	}
	return key, secret
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

const testGeometryPayload = 512

// testPollInterval is the test network's poll interval: receive fetches no
// faster than a client keeping to it may (wire.MaxFetchesPerPoll a poll), or
// a provider slowed down by a test's load would rightly close the link for
// its request rate.
const testPollInterval = 10 * time.Millisecond

func newTestNet(t *testing.T, rng *rand.Rand) *testNet {
	t.Helper()
	dir := t.TempDir()
	tn := &testNet{
		doc: &directory.Document{
			Epoch: 1, ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour),
			Parameters: directory.Parameters{
				// Clients here send and fetch in bursts, as fast as a test
				// can: the rates give providers' limits room for that
				// (userLimits).
				Layers: 3, MeanDelay: time.Millisecond, PollInterval: testPollInterval, SendRate: 100,
				Geometry: sphinx.Geometry{MaxHops: 5, UserPayloadLength: testGeometryPayload},
			},
		},
		accounts: map[string]string{}, clients: map[string]wire.Keypair{}, mailboxes: map[string]mailbox.ID{},
	}
	var listeners []net.Listener
	add := func(name string, role directory.Role, layer uint8) {
		_, identity, _ := ed25519.GenerateKey(testrand.Reader{Rand: rng})
		link, _ := wire.GenerateKeypair(testrand.Reader{Rand: rng})
		sphinxKey, secret := testSphinxKey(t, rng, tn.doc.Parameters.Geometry.Scheme)
		tn.sphinxSecrets = append(tn.sphinxSecrets, secret)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		nodeDir := filepath.Join(dir, name)
		cfg := Config{
			Identity: identity, LinkKey: link, SphinxKey: sphinxKey, Listener: ln, DataDir: nodeDir,
			Mailbox: mailbox.Options{Quota: 10000, Retention: time.Hour}, PeerQueue: 1024, DelayQueue: 10000,
			ReplayExpected: 100000, Rand: testrand.Reader{Rand: rng},
		}
		if role == directory.RoleProvider {
			tn.accounts[name] = filepath.Join(nodeDir, "accounts")
		}
		tn.configs = append(tn.configs, cfg)
		n := directory.Node{Name: name, Role: role, Layer: layer, IdentityKey: identity.Public().(ed25519.PublicKey), SphinxKey: sphinxKey.Public(), Address: ln.Addr().String()}
		copy(n.LinkKey[:], link.Public)
		tn.doc.Nodes = append(tn.doc.Nodes, n)
	}
	add("provider-a", directory.RoleProvider, 0)
	add("provider-b", directory.RoleProvider, 0)
	for layer := uint8(1); layer <= 3; layer++ {
		add(fmt.Sprintf("mix-%d-a", layer), directory.RoleMix, layer)
		add(fmt.Sprintf("mix-%d-b", layer), directory.RoleMix, layer)
	}
	if err := tn.doc.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ client, provider string }{{"alice", "provider-a"}, {"bob", "provider-b"}} {
		key, _ := wire.GenerateKeypair(testrand.Reader{Rand: rng})
		var id mailbox.ID
		testrand.Reader{Rand: rng}.Read(id[:])
		tn.clients[c.client], tn.mailboxes[c.client] = key, id
		if err := mkdirAll(filepath.Dir(tn.accounts[c.provider])); err != nil {
			t.Fatal(err)
		}
		var pub [32]byte
		copy(pub[:], key.Public)
		if err := AddAccount(tn.accounts[c.provider], pub, id); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tn.configs {
		cfg := tn.configs[i]
		cfg.Document = tn.doc
		if path, ok := tn.accounts[tn.doc.Nodes[i].Name]; ok {
			accounts, err := LoadAccounts(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Accounts = accounts
		}
		tn.configs[i] = cfg
		tn.nodes = append(tn.nodes, nil)
		tn.running = append(tn.running, running{})
		tn.start(t, i)
	}
	t.Cleanup(tn.stop)
	return tn
}

// start builds and runs node i from its config.
func (tn *testNet) start(t *testing.T, i int) {
	t.Helper()
	n, err := New(tn.configs[i])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tn.nodes[i], tn.running[i] = n, running{cancel: cancel, done: done}
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			t.Errorf("%s: %v", tn.doc.Nodes[i].Name, err)
		}
	}()
}

// stopNode stops node i and waits until it has closed its stores.
func (tn *testNet) stopNode(i int) {
	if r := tn.running[i]; r.cancel != nil {
		r.cancel()
		<-r.done
		tn.running[i] = running{}
	}
}

func (tn *testNet) stop() {
	for i := range tn.running {
		tn.stopNode(i)
	}
}

func (tn *testNet) node(name string) *directory.Node {
	for i := range tn.doc.Nodes {
		if tn.doc.Nodes[i].Name == name {
			return &tn.doc.Nodes[i]
		}
	}
	return nil
}

// path picks a random route from provider-a through one mix per layer to
// provider-b, for bob's mailbox.
func (tn *testNet) path(rng *rand.Rand, to string) []sphinx.PathHop {
	hop := func(n *directory.Node, cmds ...sphinx.Command) sphinx.PathHop {
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: cmds}
	}
	delay := sphinx.NodeDelay{Milliseconds: uint32(rng.IntN(3))}
	p := []sphinx.PathHop{hop(tn.node("provider-a"), delay)}
	for layer := uint8(1); layer <= 3; layer++ {
		mixes := tn.doc.Layer(layer)
		p = append(p, hop(mixes[rng.IntN(len(mixes))], delay))
	}
	return append(p, hop(tn.node("provider-b"), sphinx.Recipient{ID: tn.mailboxes[to]}))
}

func (tn *testNet) dial(t *testing.T, client, provider string) *clientlink.Link {
	t.Helper()
	p := tn.node(provider)
	l, err := clientlink.Dial(context.Background(), p.Address, tn.clients[client], p.LinkKey, wire.FrameSizeFor(tn.doc.Parameters.Geometry.PacketLength()), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestPacketsCrossTheNetwork sends packets from alice through provider-a
// and three mix layers into bob's mailbox at provider-b; every one must
// arrive exactly once.
func TestPacketsCrossTheNetwork(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	tn := newTestNet(t, rng)
	f, err := sphinx.New(tn.doc.Parameters.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")

	const count = 200
	for i := range count {
		msg := binary.BigEndian.AppendUint32(nil, uint32(i))
		packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(packet); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, bob, count, 30*time.Second)
	for i := range count {
		if got[uint32(i)] != 1 {
			t.Fatalf("message %d arrived %d times", i, got[uint32(i)])
		}
	}
	if alice.Acknowledged() != count {
		t.Fatalf("provider-a acknowledged %d of %d", alice.Acknowledged(), count)
	}
}

// receive fetches until want distinct messages (numbered by their first 4
// bytes) have arrived, and returns how often each arrived.
func receive(t *testing.T, l *clientlink.Link, want int, timeout time.Duration) map[uint32]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := map[uint32]int{}
	pace := rate.NewLimiter(rate.Every(testPollInterval/wire.MaxFetchesPerPoll), wire.MaxFetchesPerPoll)
	for len(got) < want {
		if err := pace.Wait(ctx); err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), want, err)
		}
		batch, _, err := l.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), want, err)
		}
		for _, m := range batch {
			var d wire.Delivery
			if err := d.UnmarshalBinary(m.Packet); err != nil || d.SURBID != nil {
				t.Fatalf("bad delivery: %v", err)
			}
			if !bytes.Equal(d.Payload[4:], make([]byte, len(d.Payload)-4)) {
				t.Fatal("payload padding is not zero")
			}
			got[binary.BigEndian.Uint32(d.Payload)]++
		}
	}
	// One more fetch acknowledges the last batch and shows nothing is left.
	if extra, remaining, err := l.Fetch(ctx); err != nil || len(extra) != 0 || remaining != 0 {
		t.Fatalf("after all messages: %d more, %d remaining, %v", len(extra), remaining, err)
	}
	return got
}

// TestDropCoverPacketsAreDiscarded: a packet for the all-zero mailbox is a
// client's drop cover packet; the last provider discards and counts it,
// stores nothing and does not count it as an error.
func TestDropCoverPacketsAreDiscarded(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	tn := newTestNet(t, rng)
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	const drops = 5
	for range drops {
		path := tn.path(rng, "bob")
		path[len(path)-1].Commands = sphinx.Commands{sphinx.Recipient{ID: directory.DropRecipient}}
		packet, err := f.NewPacket(testrand.Reader{Rand: rng}, path, []byte("cover"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(packet); err != nil {
			t.Fatal(err)
		}
	}
	provider := tn.nodes[1]
	waitFor(t, "the drop packets to reach provider-b", func() bool {
		return counter(t, provider, "backchannel_cover_dropped_total", "") == drops
	})
	if got := counter(t, provider, "backchannel_packets_delivered_total", ""); got != 0 {
		t.Fatalf("%v drop packets were stored", got)
	}
	if got, _, err := bob.Fetch(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("bob's mailbox holds %d packets (%v)", len(got), err)
	}
}

// TestClientSetsRetention: a client asks its provider to keep its unfetched
// packets for a minute (disappearing messages); what waits longer goes at
// the next expiry, while another user's mailbox keeps the provider's week.
func TestClientSetsRetention(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{8}))
	tn := newTestNet(t, rng)
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	if err := bob.SetRetention(time.Minute); err != nil {
		t.Fatal(err)
	}
	// A fetch answers only after the frames before it on the link were
	// handled: the retention is recorded.
	if _, _, err := bob.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	packet, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), []byte("disappearing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(packet); err != nil {
		t.Fatal(err)
	}
	provider := tn.nodes[1]
	waitFor(t, "the packet in bob's mailbox", func() bool {
		return counter(t, provider, "backchannel_packets_delivered_total", "") == 1
	})
	if removed, err := provider.provider.mailbox.Expire(time.Now().Add(30 * time.Second)); err != nil || removed != 0 {
		t.Fatalf("expired %d within the minute (%v)", removed, err)
	}
	if removed, err := provider.provider.mailbox.Expire(time.Now().Add(2 * time.Minute)); err != nil || removed != 1 {
		t.Fatalf("expired %d after the minute, want 1 (%v)", removed, err)
	}
}

// rekey makes the document of the next epoch, with fresh Sphinx keys for
// every node, and installs it on every node with the given grace period.
func (tn *testNet) rekey(t *testing.T, rng *rand.Rand, grace time.Duration) {
	t.Helper()
	tn.rekeyTo(t, rng, grace, tn.doc.Parameters.Geometry)
}

// rekeyTo is rekey to a document of geometry g.
func (tn *testNet) rekeyTo(t *testing.T, rng *rand.Rand, grace time.Duration, g sphinx.Geometry) {
	t.Helper()
	next := *tn.doc
	next.Epoch++
	next.Parameters.Geometry = g
	next.Nodes = append([]directory.Node(nil), tn.doc.Nodes...)
	keys := make([]*sphinx.PrivateKey, len(next.Nodes))
	for i := range next.Nodes {
		keys[i], tn.sphinxSecrets[i] = testSphinxKey(t, rng, next.Parameters.Geometry.Scheme)
		next.Nodes[i].SphinxKey = keys[i].Public()
	}
	for i, n := range tn.nodes {
		if err := n.Install(nil, &next, keys[i], grace); err != nil {
			t.Fatal(err)
		}
		tn.configs[i].SphinxKey = keys[i]
	}
	tn.doc = &next
}

// TestEpochChangeWithGrace: packets made with the previous epoch's keys
// still go through during the grace period after every node moved to a new
// epoch (and are counted as such); once the grace is over, or two epochs
// on, they are dropped as bad MACs; packets made with the new keys go
// through.
func TestEpochChangeWithGrace(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{9}))
	tn := newTestNet(t, rng)
	f, _ := sphinx.New(tn.doc.Parameters.Geometry)
	alice, bob := tn.dial(t, "alice", "provider-a"), tn.dial(t, "bob", "provider-b")
	packet := func(i uint32) []byte {
		p, err := f.NewPacket(testrand.Reader{Rand: rng}, tn.path(rng, "bob"), binary.BigEndian.AppendUint32(nil, i))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	send := func(p []byte) {
		if _, err := alice.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	epoch1 := packet(1)
	epoch1Late := packet(2)
	tn.rekey(t, rng, time.Minute) // epoch 2, epoch 1 in grace
	send(epoch1)
	send(packet(3))
	got := receive(t, bob, 2, 30*time.Second)
	if got[1] != 1 || got[3] != 1 {
		t.Fatalf("during the grace period: %v", got)
	}
	if n := counter(t, tn.nodes[0], "backchannel_grace_unwraps_total", ""); n != 1 {
		t.Fatalf("provider-a took %v packets with the previous key, want 1", n)
	}
	epoch2 := packet(4)
	tn.rekey(t, rng, 0) // epoch 3; epoch 2's grace is over at once, epoch 1 is gone
	before := counter(t, tn.nodes[0], "backchannel_packets_dropped_total", "bad_mac")
	send(epoch1Late)
	send(epoch2)
	waitFor(t, "both old packets dropped at provider-a", func() bool {
		return counter(t, tn.nodes[0], "backchannel_packets_dropped_total", "bad_mac") == before+2
	})
	send(packet(5))
	if got := receive(t, bob, 1, 30*time.Second); got[5] != 1 {
		t.Fatalf("with the new keys: %v", got)
	}
	if tn.nodes[3].Epoch() != 3 {
		t.Fatalf("a node is at epoch %d", tn.nodes[3].Epoch())
	}
}
