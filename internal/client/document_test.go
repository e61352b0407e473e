package client

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/tools/testnet"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// documentLink is a provider that serves the documents a test sets.
type documentLink struct {
	current, next []byte
}

func (l *documentLink) Send([]byte) (uint64, error)                              { return 0, nil }
func (l *documentLink) Fetch(context.Context) ([]clientlink.Fetched, int, error) { return nil, 0, nil }
func (l *documentLink) SetRetention(time.Duration) error                         { return nil }
func (l *documentLink) Close() error                                             { return nil }
func (l *documentLink) FetchDocument(_ context.Context, next bool) ([]byte, error) {
	if next && l.next != nil {
		return l.next, nil
	}
	return l.current, nil
}

// documentFixture is a client of a generated network with two
// authorities, both required, epochs of 80 s and a clock skew of 2 s.
type documentFixture struct {
	t       *testing.T
	clk     *clock.Fake
	c       *Client
	doc     *directory.Document
	signers []ed25519.PrivateKey
}

func newDocumentFixture(t *testing.T) *documentFixture {
	t.Helper()
	genesis := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(genesis.Add(3*80*time.Second + 10*time.Second)) // in epoch 3
	tn, err := testnet.Generate(testnet.Options{Dir: t.TempDir(), Layers: 1, MixesPerLayer: 1, Providers: 1, Now: clk.Now(), Rand: testrand.New(21),
		Authorities: 2, Threshold: 2, Genesis: genesis, EpochLength: 80 * time.Second, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	x := &documentFixture{t: t, clk: clk, doc: tn.Document}
	for i := range 2 {
		k, err := keyfile.ReadIdentity(filepath.Join(tn.Dir, fmt.Sprintf("authority-%d", i+1), "authority.key"))
		if err != nil {
			t.Fatal(err)
		}
		x.signers = append(x.signers, k)
	}
	p := tn.Document.Providers()[0]
	x.c, _, err = Create(Config{Dir: filepath.Join(t.TempDir(), "alice"), Passphrase: []byte("x"), VaultParams: testVaultParams, Clock: clk, Rand: testrand.New(22)},
		Network{Authorities: tn.Authorities, Threshold: 2, ClockSkew: 2 * time.Second,
			Provider: Provider{Name: p.Name, Address: p.Address, LinkKey: p.LinkKey, Identity: [32]byte(p.IdentityKey)},
			Geometry: tn.Document.Parameters.Geometry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.c.Close() })
	return x
}

// signed is doc moved to epoch e (its times with it), signed by signers.
func (x *documentFixture) signed(e uint64, signers ...ed25519.PrivateKey) []byte {
	return x.signedAs(e, nil, signers...)
}

// signedAs is signed with the encoding changed by edit before it is
// signed, as authorities of a newer release might write it.
func (x *documentFixture) signedAs(e uint64, edit func([]byte), signers ...ed25519.PrivateKey) []byte {
	d := *x.doc
	length := d.ValidUntil.Sub(d.ValidFrom)
	shift := time.Duration(e-d.Epoch) * length
	d.Epoch, d.ValidFrom, d.ValidUntil = e, d.ValidFrom.Add(shift), d.ValidUntil.Add(shift)
	encoded, err := d.MarshalBinary()
	if err != nil {
		x.t.Fatal(err)
	}
	if edit != nil {
		edit(encoded)
	}
	s := directory.Signed{Document: encoded}
	for _, k := range signers {
		s.Signatures = append(s.Signatures, directory.Sign(encoded, k))
	}
	raw, _ := s.MarshalBinary()
	return raw
}

// TestDocumentsRefused: the client refuses, with an error that says why,
// a document with too few signatures, with a forged one, one that has
// ended, and one not valid yet by its clock.
func TestDocumentsRefused(t *testing.T) {
	x := newDocumentFixture(t)
	e := x.doc.Epoch
	_, forger, _ := ed25519.GenerateKey(testrand.New(23))
	forged := x.signed(e, x.signers[0], forger)
	var s directory.Signed
	s.UnmarshalBinary(forged)
	s.Signatures[1].Authority = x.signers[1].Public().(ed25519.PublicKey)
	forged, _ = s.MarshalBinary()
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"one signature", x.signed(e, x.signers[0]), "not enough valid authority signatures: 1 of the 2 required"},
		{"forged signature", forged, "not enough valid authority signatures: 1 of the 2 required"},
		{"ended", x.signed(e-1, x.signers...), "document expired: epoch"},
		{"not yet valid", x.signed(e+2, x.signers...), "is the clock right?"},
		// Byte 79 of a version-2 document is its packet format: one this
		// release does not know.
		{"unknown packet format", x.signedAs(e, func(b []byte) { b[79] = 7 }, x.signers...), "packet format scheme(7), which this release does not know"},
	} {
		err := x.c.refreshDocument(context.Background(), &documentLink{current: tc.raw})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if err := x.c.refreshDocument(context.Background(), &documentLink{current: x.signed(e, x.signers...)}); err != nil {
		t.Fatal(err)
	}
}

// TestDocumentFollowing: from three quarters of the epoch the client takes
// the next document from its provider (refusing one with too few
// signatures), switches to it half-way through the grace period, and once
// a document has ended with no successor it sends nothing and says why.
func TestDocumentFollowing(t *testing.T) {
	x := newDocumentFixture(t)
	e := x.doc.Epoch
	link := &documentLink{current: x.signed(e, x.signers...)}
	ctx := context.Background()
	if err := x.c.refreshDocument(ctx, link); err != nil {
		t.Fatal(err)
	}
	start := x.doc.ValidFrom
	at := func(d time.Duration) {
		x.clk.Advance(start.Add(d).Sub(x.clk.Now()))
		if err := x.c.followDocuments(ctx, link); err != nil {
			t.Fatal(err)
		}
	}
	link.next = x.signed(e+1, x.signers...)
	at(50 * time.Second)
	if x.c.Stats().NextEpoch != 0 {
		t.Fatal("took the next document before three quarters of the epoch")
	}
	link.next = x.signed(e+1, x.signers[0])
	at(61 * time.Second)
	if x.c.Stats().NextEpoch != 0 {
		t.Fatal("took a next document with one signature")
	}
	link.next = x.signed(e+1, x.signers...)
	at(62 * time.Second)
	if x.c.Stats().NextEpoch != e+1 {
		t.Fatal("did not take the next document")
	}
	grace := x.doc.Grace()
	at(80*time.Second + grace/2 - time.Millisecond)
	if x.c.Stats().Epoch != e {
		t.Fatal("switched before half of the grace period")
	}
	at(80*time.Second + grace/2)
	if x.c.Stats().Epoch != e+1 {
		t.Fatal("did not switch at half of the grace period")
	}

	// No document after e+1: the provider serves e+1 for both.
	link.current, link.next = x.signed(e+1, x.signers...), nil
	at(160*time.Second + time.Second)
	if p := x.c.Stats().DocumentProblem; p != "" {
		t.Fatalf("a problem within the clock skew: %s", p)
	}
	at(160*time.Second + 3*time.Second)
	p := x.c.Stats().DocumentProblem
	if !strings.Contains(p, fmt.Sprintf("epoch %d ended", e+1)) || !strings.Contains(p, "authorities down") {
		t.Fatalf("problem %q", p)
	}
	x.c.mu.Lock()
	b, err := x.c.plan(evLoop, x.clk.Now())
	x.c.mu.Unlock()
	if b != nil || err != nil {
		t.Fatalf("planned a packet with an ended document (%v)", err)
	}
	// A newer document clears the problem (once its grace period is half
	// over, as for any change).
	link.current = x.signed(e+2, x.signers...)
	at(160*time.Second + grace/2)
	if s := x.c.Stats(); s.DocumentProblem != "" || s.Epoch != e+2 {
		t.Fatalf("epoch %d, problem %q", s.Epoch, s.DocumentProblem)
	}
}
