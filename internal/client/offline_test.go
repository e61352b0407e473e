package client

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testnet"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// testVaultParams make vaults cheap to open in tests.
var testVaultParams = vault.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// offlinePair is two clients made for a generated network that does not
// run: alice knows bob and holds the network's document, so she can queue
// messages and build packets; bob is closed. Nothing is sent.
type offlinePair struct {
	alice    *Client
	aliceCfg Config
	bobCfg   Config // bob's state, closed
	clock    *clock.Fake
	start    time.Time
	doc      *directory.Document
	netDir   string // the generated network's files (the nodes' keys)
}

// offline says how to make an offlinePair: the seed of the network's keys,
// the randomness of each client, the schedule's seed (zero: {seed}) and
// the mixes per layer (zero: one).
type offline struct {
	seed               byte
	aliceRand, bobRand io.Reader
	scheduleSeed       [32]byte
	mixesPerLayer      int
}

func newOfflinePair(t *testing.T, o offline) offlinePair {
	t.Helper()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	tn, err := testnet.Generate(testnet.Options{
		Dir: t.TempDir(), Layers: 3, MixesPerLayer: max(o.mixesPerLayer, 1), Providers: 2, Validity: 24 * time.Hour, Now: start, Rand: testrand.New(o.seed, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	network := func(i int) Network {
		p := tn.Document.Providers()[i]
		return Network{Authorities: tn.Authorities, Threshold: tn.Threshold,
			Provider: Provider{Name: p.Name, Address: p.Address, LinkKey: p.LinkKey, Identity: [32]byte(p.IdentityKey)},
			Geometry: tn.Document.Parameters.Geometry}
	}
	if o.scheduleSeed == ([32]byte{}) {
		o.scheduleSeed = [32]byte{o.seed}
	}
	if o.bobRand == nil {
		o.bobRand = testrand.New(o.seed, 3)
	}
	aliceCfg := Config{Dir: filepath.Join(t.TempDir(), "alice"), Passphrase: []byte("a"), VaultParams: testVaultParams,
		Clock: clk, Rand: o.aliceRand, ScheduleSeed: o.scheduleSeed}
	alice, _, err := Create(aliceCfg, network(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alice.Close)
	bobCfg := Config{Dir: filepath.Join(t.TempDir(), "bob"), Passphrase: []byte("b"), VaultParams: testVaultParams,
		Clock: clk, Rand: o.bobRand}
	bob, _, err := Create(bobCfg, network(1))
	if err != nil {
		t.Fatal(err)
	}
	bob.Close()
	if err := alice.AddContact("bob", bob.Self()); err != nil {
		t.Fatal(err)
	}
	if err := alice.useDocument(tn.Document); err != nil {
		t.Fatal(err)
	}
	return offlinePair{alice: alice, aliceCfg: aliceCfg, bobCfg: bobCfg, clock: clk, start: start, doc: tn.Document, netDir: tn.Dir}
}

// confirmSession sets alice's session with bob up as if bob had
// acknowledged its hello (which is not simulated), and returns bob.
func (p offlinePair) confirmSession(t *testing.T) *contact {
	t.Helper()
	return p.confirmSessionWith(t, "bob")
}

// confirmSessionWith is confirmSession with the contact of that name.
func (p offlinePair) confirmSessionWith(t *testing.T, name string) *contact {
	t.Helper()
	ct := p.alice.byName(name)
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if err := p.alice.startSession(ct, p.clock.Now()); err != nil {
		t.Fatal(err)
	}
	ct.rec.Session.Confirmed = true
	return ct
}
