package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/hop"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/authority"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// fakeAuthority takes descriptors and serves whatever documents the test
// puts in it, with the Date header of the test's clock.
type fakeAuthority struct {
	clock *clock.Fake
	mu    sync.Mutex
	descr map[uint64]*directory.Descriptor
	docs  map[string][]byte
}

func (a *fakeAuthority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Date", a.clock.Now().UTC().Format(http.TimeFormat))
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/descriptor":
		raw, _ := io.ReadAll(r.Body)
		d, err := directory.ParseDescriptor(raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.descr[d.Epoch] = d
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/document/"):
		doc, ok := a.docs[strings.TrimPrefix(r.URL.Path, "/v1/document/")]
		if !ok {
			http.Error(w, "no document", http.StatusNotFound)
			return
		}
		w.Write(doc)
	default:
		http.Error(w, "no", http.StatusNotFound)
	}
}

// followFixture is one mix node following a fake authority, on a fake
// clock, with epochs of 80 s (a grace period of 10 s) starting at epoch 5.
type followFixture struct {
	t          *testing.T
	clk        *clock.Fake
	auth       *fakeAuthority
	keys       []ed25519.PrivateKey // the two trusted authorities
	provider   directory.Node
	start      time.Time
	node       *Node
	f          *follower
	epochKeys  *EpochKeys
	docPath    string
	logs       *bytes.Buffer
	parameters directory.Parameters
}

const followEpoch = 80 * time.Second

func newFollowFixture(t *testing.T) *followFixture {
	t.Helper()
	rng := testrand.New(11)
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	x := &followFixture{t: t, clk: clock.NewFake(start.Add(time.Second)), start: start, logs: &bytes.Buffer{},
		parameters: directory.Parameters{Layers: 1, MeanDelay: time.Millisecond, PollInterval: time.Second,
			Geometry: sphinx.Geometry{MaxHops: 5, UserPayloadLength: testGeometryPayload}}}
	x.auth = &fakeAuthority{clock: x.clk, descr: map[uint64]*directory.Descriptor{}, docs: map[string][]byte{}}
	srv := httptest.NewServer(x.auth)
	t.Cleanup(srv.Close)
	for range 2 {
		_, k, _ := ed25519.GenerateKey(rng)
		x.keys = append(x.keys, k)
	}
	_, providerKey, _ := ed25519.GenerateKey(rng)
	x.provider = directory.Node{Name: "provider-a", Role: directory.RoleProvider, IdentityKey: providerKey.Public().(ed25519.PublicKey), Address: "127.0.0.1:1"}

	_, identity, _ := ed25519.GenerateKey(rng)
	link, _ := wire.GenerateKeypair(rng)
	dir := t.TempDir()
	var err error
	if x.epochKeys, err = NewEpochKeys(filepath.Join(dir, "sphinx-keys"), rng); err != nil {
		t.Fatal(err)
	}
	keys, err := x.epochKeys.Descriptor(5)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := x.epochKeys.Load(x.parameters.Geometry.Scheme, 5)
	if err != nil {
		t.Fatal(err)
	}
	self := directory.Descriptor{Name: "mix-1-a", Role: directory.RoleMix, IdentityKey: identity.Public().(ed25519.PublicKey), Address: "127.0.0.1:2"}
	copy(self.LinkKey[:], link.Public)
	first := self
	first.Epoch, first.SphinxKeys = 5, keys
	signed, doc := x.document(5, x.keys, &first)
	x.docPath = filepath.Join(dir, "network.doc")
	trust := directory.Trust{Authorities: []ed25519.PublicKey{x.keys[0].Public().(ed25519.PublicKey), x.keys[1].Public().(ed25519.PublicKey)},
		Threshold: 2, ClockSkew: 2 * time.Second}
	follow := &FollowConfig{URLs: []string{srv.URL}, Trust: trust, Keys: x.epochKeys, Self: self, Identity: identity, DocumentPath: x.docPath}
	x.node, err = New(Config{Identity: identity, LinkKey: link, SphinxKey: secret, Document: doc, SignedDocument: signed, DataDir: dir,
		PeerQueue: 16, DelayQueue: 16, ReplayExpected: 1000, Follow: follow, Clock: x.clk, Rand: rng,
		Logger: slog.New(slog.NewTextHandler(x.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range x.node.epochs.Load().all() {
			e.replay.Close()
		}
	})
	x.f = newFollower(*follow, x.node)
	return x
}

// document builds the document of epoch e with the provider and the given
// mix descriptor, signed by signers.
func (x *followFixture) document(e uint64, signers []ed25519.PrivateKey, mix *directory.Descriptor) ([]byte, *directory.Document) {
	x.t.Helper()
	// The provider's Sphinx keys do not matter here: it has the mix's.
	p := directory.Descriptor{Epoch: e, Name: x.provider.Name, Role: directory.RoleProvider, IdentityKey: x.provider.IdentityKey, Address: x.provider.Address,
		SphinxKeys: mix.SphinxKeys}
	doc, err := authority.Build(e, x.start.Add(time.Duration(e-5)*followEpoch), followEpoch, x.parameters, []*directory.Descriptor{&p, mix})
	if err != nil {
		x.t.Fatal(err)
	}
	encoded, _ := doc.MarshalBinary()
	s := directory.Signed{Document: encoded}
	for _, k := range signers {
		s.Signatures = append(s.Signatures, directory.Sign(encoded, k))
	}
	raw, _ := s.MarshalBinary()
	return raw, doc
}

// at runs the follower's step at start+d.
func (x *followFixture) at(d time.Duration) {
	x.clk.Advance(x.start.Add(d).Sub(x.clk.Now()))
	x.f.step(context.Background(), x.clk.Now())
}

func (x *followFixture) said(parts ...string) bool {
	for _, line := range strings.Split(x.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestFollowerThroughAnEpoch: the follower uploads descriptors for the two
// next epochs, each with the Sphinx keys it keeps for them; refuses next
// documents with too few or forged signatures or of another epoch, and
// says why; takes a good one, moves to it at its epoch's start, saves it,
// and erases the old key once the grace period is over.
func TestFollowerThroughAnEpoch(t *testing.T) {
	x := newFollowFixture(t)
	x.at(10 * time.Second)
	for _, e := range []uint64{6, 7} {
		d := x.auth.descr[e]
		if d == nil {
			t.Fatalf("no descriptor uploaded for epoch %d", e)
		}
		for _, s := range sphinx.Schemes {
			current, err1 := x.epochKeys.Load(s, e)
			next, err2 := x.epochKeys.Load(s, e+1)
			keys, ok := d.Keys(s)
			if err1 != nil || err2 != nil || !ok || !keys.Current.Equal(current.Public()) || !keys.Next.Equal(next.Public()) {
				t.Fatalf("epoch %d: the descriptor's %v Sphinx keys are not the ones kept (%v, %v)", e, s, err1, err2)
			}
		}
	}

	six := x.auth.descr[6]
	good, _ := x.document(6, x.keys, six)
	_, forger, _ := ed25519.GenerateKey(testrand.New(12))
	forged, _ := x.document(6, []ed25519.PrivateKey{x.keys[0], forger}, six)
	// The forger claims to be the second authority.
	var s directory.Signed
	s.UnmarshalBinary(forged)
	s.Signatures[1].Authority = x.keys[1].Public().(ed25519.PublicKey)
	forged, _ = s.MarshalBinary()
	one, _ := x.document(6, x.keys[:1], six)
	seven := *six
	seven.Epoch = 7
	other, _ := x.document(7, x.keys, &seven)
	for i, tc := range []struct {
		name, raw []byte
		want      string
	}{
		{[]byte("one signature"), one, "1 of the 2 required"},
		{[]byte("forged signature"), forged, "1 of the 2 required"},
		{[]byte("another epoch"), other, "a document of epoch 7 for epoch 6"},
	} {
		x.auth.docs["6"] = tc.raw
		x.at(60*time.Second + time.Duration(i)*time.Second)
		if x.node.epochs.Load().next != nil {
			t.Fatalf("%s: taken as the next document", tc.name)
		}
		if !x.said("refused a document", tc.want) {
			t.Fatalf("%s: not said why; logs:\n%s", tc.name, x.logs)
		}
		x.f.authorities.said = map[string]bool{} // say it again for the next case
	}
	x.auth.docs["6"] = good
	x.at(70 * time.Second)
	if next := x.node.epochs.Load().next; next == nil || next.Epoch != 6 {
		t.Fatal("the good document of epoch 6 was not taken")
	}
	x.at(followEpoch)
	if x.node.Epoch() != 6 {
		t.Fatalf("at epoch 6's start the node is in epoch %d", x.node.Epoch())
	}
	if saved, _ := os.ReadFile(x.docPath); !bytes.Equal(saved, good) {
		t.Fatal("the new document was not saved")
	}
	if _, err := x.epochKeys.Load(sphinx.DefaultGeometry.Scheme, 5); err != nil {
		t.Fatalf("epoch 5's key is gone during the grace period: %v", err)
	}
	x.at(followEpoch + followEpoch/8 + time.Second)
	if _, err := x.epochKeys.Load(sphinx.DefaultGeometry.Scheme, 5); err == nil {
		t.Fatal("epoch 5's key outlived the grace period")
	}
}

// TestFollowerWithoutDocuments: with no document for the next epoch the
// node stays on the current one, says so, and once the current one has
// ended (beyond the clock skew) says that no newer one exists and sets
// backchannel_document_expired.
func TestFollowerWithoutDocuments(t *testing.T) {
	x := newFollowFixture(t)
	x.at(followEpoch + 500*time.Millisecond)
	if x.node.Epoch() != 5 || !x.said("no document for the new epoch yet", "epoch=6") {
		t.Fatalf("epoch %d; logs:\n%s", x.node.Epoch(), x.logs)
	}
	if v := counter(t, x.node, "backchannel_document_expired", ""); v != 0 {
		t.Fatalf("expired = %v within the skew", v)
	}
	x.at(followEpoch + 3*time.Second)
	if !x.said("the network document has ended") {
		t.Fatalf("not said; logs:\n%s", x.logs)
	}
	if v := counter(t, x.node, "backchannel_document_expired", ""); v != 1 {
		t.Fatalf("expired = %v", v)
	}
}

// TestFollowerSaysClockIsOff: an authority whose clock differs from the
// node's by more than the allowed skew is told in the log.
func TestFollowerSaysClockIsOff(t *testing.T) {
	x := newFollowFixture(t)
	x.f.authorities.client.Clock = clock.NewFake(x.start.Add(time.Minute))
	x.at(10 * time.Second)
	if !x.said("clock is off the authority's", fmt.Sprintf("clock_skew=%v", 2*time.Second)) {
		t.Fatalf("not said; logs:\n%s", x.logs)
	}
}

// TestPreparedEpoch: the next epoch's state is made when its document is
// taken, ahead of the change, and the change uses it.
func TestPreparedEpoch(t *testing.T) {
	x := newFollowFixture(t)
	x.at(10 * time.Second)
	good, _ := x.document(6, x.keys, x.auth.descr[6])
	x.auth.docs["6"] = good
	x.at(70 * time.Second)
	ready := x.node.epochs.Load().ready
	if ready == nil || ready.doc.Epoch != 6 {
		t.Fatal("the next epoch was not prepared")
	}
	x.at(followEpoch)
	if x.node.epochs.Load().cur != ready {
		t.Fatal("the change did not use the prepared state")
	}
}

// TestFollowerClosesLinksToNodesThatLeft: a next hop the new document does
// not list keeps its link through the grace period (packets made for the
// old document may still go to it); after it the link is closed, the
// packets held for it are dropped and counted as next_hop_left, and a
// packet for it finds no link.
func TestFollowerClosesLinksToNodesThatLeft(t *testing.T) {
	x := newFollowFixture(t)
	t.Cleanup(x.node.stopPeers)
	x.at(10 * time.Second)
	left := sphinx.NodeID(x.provider.IdentityKey)
	p := x.node.peer(left)
	if p == nil {
		t.Fatal("no link to the provider of the current document")
	}
	if !p.hop.Enqueue([]byte("held for a provider that is down")) {
		t.Fatal("the link's queue is full")
	}

	_, other, _ := ed25519.GenerateKey(testrand.New(13))
	x.provider = directory.Node{Name: "provider-b", Role: directory.RoleProvider, IdentityKey: other.Public().(ed25519.PublicKey), Address: "127.0.0.1:3"}
	x.auth.docs["6"], _ = x.document(6, x.keys, x.auth.descr[6])
	x.at(70 * time.Second)
	x.at(followEpoch)
	if x.node.Epoch() != 6 {
		t.Fatalf("at epoch 6's start the node is in epoch %d", x.node.Epoch())
	}
	if x.node.peer(left) != p {
		t.Fatal("the link to a node of the previous document was closed during the grace period")
	}
	x.at(followEpoch + followEpoch/8 + time.Second)
	if x.node.peer(left) != nil {
		t.Fatal("a link to a node no document lists is still open after the grace period")
	}
	select {
	case <-p.done:
	default:
		t.Fatal("the closed link's goroutine still runs")
	}
	if got := counter(t, x.node, "backchannel_packets_dropped_total", "next_hop_left"); got != 1 {
		t.Fatalf("next_hop_left drops = %v, want the 1 packet held", got)
	}
	if !x.said("not in the network document any more", "peer=provider-a") {
		t.Fatalf("not said; logs:\n%s", x.logs)
	}
}

// TestNextHopThatStopsReading: a next hop that completes the handshake and
// then reads nothing holds the node's writes once the socket buffers are
// full; after the link write timeout the node gives that link up (and
// would make it again), instead of waiting for ever.
func TestNextHopThatStopsReading(t *testing.T) {
	x := newFollowFixture(t)
	var logs lockedBuffer
	x.node.log = slog.New(slog.NewTextHandler(&logs, nil))
	x.node.cfg.LinkWriteTimeout = 200 * time.Millisecond
	key, _ := wire.GenerateKeypair(testrand.New(14))
	// A small receive buffer, set before the handshake, so that the
	// writes block long before the window of unacknowledged packets is
	// full.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *wire.Conn, 1)
	a, err := wire.NewAcceptor(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c, err := a.Accept(conn, func([wire.KeySize]byte) error { return nil }, wire.OneFrameSize(x.node.linkFrameSize()))
		if err != nil {
			conn.Close()
			return
		}
		accepted <- c // and never read
	}()
	x.node.cfg.PeerQueue = hop.MaxUnacked
	stalled := &directory.Node{Name: "stalled", Address: ln.Addr().String()}
	copy(stalled.LinkKey[:], key.Public)
	p := x.node.startPeer(stalled)
	defer func() { p.cancel(); <-p.done }()
	packet := make([]byte, x.node.epochs.Load().cur.format.Geometry().PacketLength())
	for range hop.MaxUnacked {
		if !p.hop.Enqueue(packet) {
			t.Fatal("the link's queue is full")
		}
	}
	c := <-accepted
	defer c.Close()
	waitFor(t, "the link to the next hop that does not read to time out", func() bool {
		return strings.Contains(logs.String(), "peer=stalled") && strings.Contains(logs.String(), "i/o timeout")
	})
}
