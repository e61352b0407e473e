// Package clienttest runs clients on a whole network in the test's own
// process (two providers, three layers of one mix, each node on its own
// loopback listener), for the tests of the client and of its features.
package clienttest

import (
	"context"
	"crypto/rand"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/relay/node"
	"github.com/backchannel/backchannel/internal/tools/testnet"
)

// VaultParams make vaults cheap to open in tests.
var VaultParams = vault.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// Network is a whole network in this process: 2 providers and 3
// layers of one mix, each node on its own loopback listener.
type Network struct {
	TN     *testnet.Network // what testnet wrote: keys, configs, the document
	params directory.Parameters
	stops  map[string]func()
}

// FastParameters are a network's parameters for tests: short delays,
// frequent polls and send slots.
func FastParameters() directory.Parameters {
	p := testnet.DefaultParameters(3)
	p.MeanDelay = time.Millisecond
	p.PollInterval = 10 * time.Millisecond
	p.SendRate, p.LoopRate, p.DropRate, p.MixLoopRate = 40, 2, 2, 0
	return p
}

// StartNetwork starts a network in this process; it stops when the test
// ends.
func StartNetwork(t *testing.T, params directory.Parameters) *Network {
	t.Helper()
	const providers, layers = 2, 3
	listeners := make([]net.Listener, providers+layers)
	addresses := make([]string, len(listeners))
	for i := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[i], addresses[i] = l, l.Addr().String()
	}
	tn, err := testnet.Generate(testnet.Options{
		Dir: t.TempDir(), Layers: layers, MixesPerLayer: 1, Providers: providers, Addresses: addresses,
		Parameters: params, Validity: time.Hour, Now: time.Now(), Rand: rand.Reader,
		DrainTimeout: 100 * time.Millisecond, // stopped nodes need not wait for peers that are down
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{TN: tn, params: params, stops: map[string]func(){}}
	t.Cleanup(func() {
		for _, stop := range n.stops {
			stop()
		}
	})
	for i, name := range tn.Names {
		n.start(t, name, listeners[i])
	}
	return n
}

// start loads and runs the named node on ln.
func (n *Network) start(t *testing.T, name string, ln net.Listener) {
	t.Helper()
	built, _, err := node.Load(t.Context(), n.TN.Configs[name], ln, nil, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); built.Run(ctx) }()
	n.stops[name] = sync.OnceFunc(func() { cancel(); <-done })
}

// Restart starts a stopped node again, on its address.
func (n *Network) Restart(t *testing.T, name string) {
	t.Helper()
	for _, nd := range n.TN.Document.Nodes {
		if nd.Name == name {
			ln, err := net.Listen("tcp", nd.Address)
			if err != nil {
				t.Fatal(err)
			}
			n.start(t, name, ln)
			return
		}
	}
	t.Fatalf("no node %q", name)
}

// DataDir is the named node's data directory (its mailboxes, for a
// provider); stop the node before opening its stores.
func (n *Network) DataDir(name string) string {
	return filepath.Join(filepath.Dir(n.TN.Configs[name]), "data")
}

// AddAccount makes an account at the provider with a link key of its own,
// for a test that speaks the link protocol itself.
func (n *Network) AddAccount(t *testing.T, provider string) (wire.Keypair, mailbox.ID) {
	t.Helper()
	key, err := wire.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var box mailbox.ID
	rand.Read(box[:])
	accounts := filepath.Join(filepath.Dir(n.TN.Configs[provider]), "accounts.txt")
	if err := node.AddAccount(accounts, [32]byte(key.Public), box); err != nil {
		t.Fatal(err)
	}
	return key, box
}

// Bootstrap returns the bootstrap of a client of the named provider.
func (n *Network) Bootstrap(provider string) client.Network {
	for _, node := range n.TN.Document.Nodes {
		if node.Name == provider {
			return client.Network{
				Authorities: n.TN.Authorities, Threshold: n.TN.Threshold, ClockSkew: time.Minute,
				Provider: client.Provider{Name: node.Name, Address: node.Address, LinkKey: node.LinkKey, Identity: [32]byte(node.IdentityKey)},
				Geometry: n.TN.Document.Parameters.Geometry,
			}
		}
	}
	panic("no provider " + provider)
}

// NewClient creates a client at the provider and registers its account.
func (n *Network) NewClient(t *testing.T, name, provider string, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), name)
	}
	cfg.Passphrase = []byte(name + " passphrase")
	cfg.VaultParams = VaultParams
	cfg.Rand = rand.Reader
	c, account, err := client.Create(cfg, n.Bootstrap(provider))
	if err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(filepath.Dir(n.TN.Configs[provider]), "accounts.txt")
	if err := node.AddAccount(accounts, account.LinkKey, account.Mailbox); err != nil {
		t.Fatal(err)
	}
	return c
}

// Stop stops a node of the network (it stays down).
func (n *Network) Stop(name string) { n.stops[name]() }

// Run runs the client until the test ends, or until the returned function
// stops it.
func Run(t *testing.T, c *client.Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done; c.Close() })
	t.Cleanup(stop)
	return stop
}

// Introduce makes a and b contacts of each other.
func Introduce(t *testing.T, a *client.Client, aName string, b *client.Client, bName string) {
	t.Helper()
	if err := a.AddContact(bName, b.Self()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddContact(aName, a.Self()); err != nil {
		t.Fatal(err)
	}
}

// WaitUntil waits for cond, checked at every change the client reports,
// for at most timeout.
func WaitUntil(t *testing.T, c *client.Client, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; stats %+v", timeout, what, c.Stats())
		}
	}
}

// CountStatus counts the sent messages in a status.
func CountStatus(c *client.Client, s client.Status) int {
	n := 0
	for _, m := range c.Outbox() {
		if m.Status == s {
			n++
		}
	}
	return n
}
