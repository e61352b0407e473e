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
	clock    *clock.Fake
	bob      Config
	doc      *directory.Document
}

func newOfflinePair(t *testing.T, seed byte, aliceRand io.Reader) offlinePair {
	t.Helper()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	tn, err := testnet.Generate(testnet.Options{
		Dir: t.TempDir(), Layers: 3, MixesPerLayer: 1, Providers: 2, Validity: 24 * time.Hour, Now: start, Rand: testrand.New(seed, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	network := func(i int) Network {
		p := tn.Document.Providers()[i]
		return Network{Authorities: tn.Authorities, Threshold: tn.Threshold,
			Provider: Provider{Name: p.Name, Address: p.Address, LinkKey: p.LinkKey, Identity: [32]byte(p.IdentityKey)}}
	}
	aliceCfg := Config{Dir: filepath.Join(t.TempDir(), "alice"), Passphrase: []byte("a"), VaultParams: testVaultParams,
		Clock: clk, Rand: aliceRand, ScheduleSeed: [32]byte{seed}}
	alice, _, err := Create(aliceCfg, network(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alice.Close)
	bobCfg := Config{Dir: filepath.Join(t.TempDir(), "bob"), Passphrase: []byte("b"), VaultParams: testVaultParams,
		Clock: clk, Rand: testrand.New(seed, 3)}
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
	return offlinePair{alice: alice, aliceCfg: aliceCfg, clock: clk, bob: bobCfg, doc: tn.Document}
}
