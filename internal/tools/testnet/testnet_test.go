package testnet

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/testrand"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// TestGenerate checks that a generated network is consistent: the document
// verifies under the written authority key and lists every node, and every
// node's config loads and points at its keys.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	net, err := Generate(Options{
		Dir: dir, Layers: 3, MixesPerLayer: 2, Providers: 2, BasePort: 40000, MetricsBasePort: 41000,
		Hosts: []string{"10.0.0.1", "10.0.0.2"}, Validity: time.Hour, Now: now, Rand: testrand.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	authority, err := keyfile.ReadIdentity(filepath.Join(dir, "authority-1", "authority.key"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "network.doc"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := directory.Verify(data, directory.Trust{Authorities: []ed25519.PublicKey{authority.Public().(ed25519.PublicKey)}, Threshold: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Nodes) != 8 || len(doc.Providers()) != 2 || len(doc.Layer(3)) != 2 {
		t.Fatalf("document has %d nodes", len(doc.Nodes))
	}
	if doc.Nodes[1].Address != "10.0.0.2:40001" {
		t.Fatalf("node 1 at %s", doc.Nodes[1].Address)
	}
	for i, n := range doc.Nodes {
		cfg, err := config.Load(net.Configs[n.Name])
		if err != nil {
			t.Fatal(err)
		}
		identity, err := keyfile.ReadIdentity(cfg.Path(cfg.Node.IdentityKey))
		if err != nil || !identity.Public().(ed25519.PublicKey).Equal(n.IdentityKey) {
			t.Fatalf("%s: identity key does not match the document: %v", n.Name, err)
		}
		if cfg.Path(cfg.Directory.Document) != filepath.Join(dir, n.Name, "network.doc") {
			t.Fatalf("%s: document path %s", n.Name, cfg.Path(cfg.Directory.Document))
		}
		// Metrics listen on loopback whatever the node's host: they are
		// not authenticated.
		if want := []string{"127.0.0.1:41000", "127.0.0.1:41001"}[i%2]; i < 2 && cfg.Node.Metrics != want {
			t.Fatalf("%s: metrics %s, want %s", n.Name, cfg.Node.Metrics, want)
		}
	}
	if _, err := Generate(Options{Dir: dir, Layers: 0, MixesPerLayer: 1, Providers: 1}); err == nil {
		t.Fatal("generated a network without layers")
	}
}

func TestClientBootstrap(t *testing.T) {
	dir := t.TempDir()
	net, err := Generate(Options{Dir: dir, Layers: 1, MixesPerLayer: 1, Providers: 2, Validity: time.Hour, Now: time.Now(), Rand: testrand.New(5)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := config.LoadNetwork(filepath.Join(dir, "network.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Providers) != 2 || n.Authorities[0] != hex.EncodeToString(net.Authorities[0]) {
		t.Fatalf("bootstrap %+v", n)
	}
	p, err := n.Provider("provider-b")
	if err != nil || p.Address != net.Document.Providers()[1].Address {
		t.Fatalf("provider-b: %+v %v", p, err)
	}
	if _, err := n.Provider("provider-z"); err == nil {
		t.Fatal("found a provider that does not exist")
	}
}

// TestAuthorities: three authorities with a threshold of two. Each gets a
// config that loads (peers, admission list of every node, parameters), the
// document carries all three signatures, and nodes and clients are told to
// want two.
func TestAuthorities(t *testing.T) {
	dir := t.TempDir()
	net, err := Generate(Options{Dir: dir, Layers: 1, MixesPerLayer: 1, Providers: 1, Validity: time.Hour, Now: time.Now(), Rand: testrand.New(6),
		Authorities: 3, Threshold: 2, EpochLength: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.AuthorityConfigs) != 3 {
		t.Fatalf("%d authority configs", len(net.AuthorityConfigs))
	}
	for _, path := range net.AuthorityConfigs {
		c, err := config.LoadAuthority(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Peers) != 2 || c.Authority.Threshold != 2 || len(c.Authority.Admitted) != 2 || c.Authority.Epoch.Duration != time.Minute {
			t.Fatalf("%s: %+v", path, c)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "network.doc"))
	if _, err := directory.Verify(data, directory.Trust{Authorities: net.Authorities, Threshold: 3}, time.Now()); err != nil {
		t.Fatalf("the document does not carry all three signatures: %v", err)
	}
	node, err := config.Load(net.Configs["mix-1-a"])
	if err != nil || len(node.Directory.Authorities) != 3 || node.Directory.Threshold != 2 {
		t.Fatalf("node config: %+v, %v", node, err)
	}
	if _, err := Generate(Options{Dir: t.TempDir(), Layers: 1, MixesPerLayer: 1, Providers: 1, Validity: time.Hour, Now: time.Now(), Rand: testrand.New(6),
		Authorities: 2, Threshold: 3}); err == nil {
		t.Fatal("a threshold above the authorities")
	}
}

// TestFollow: with Follow, the document is the genesis epoch's, aligned
// with the authorities' epochs, and every node config names the
// authorities' URLs and what the node declares of itself.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	genesis := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	now := genesis.Add(25 * time.Minute)
	net, err := Generate(Options{Dir: dir, Layers: 1, MixesPerLayer: 1, Providers: 1, Now: now, Rand: testrand.New(7),
		Authorities: 2, Threshold: 2, AuthorityAddresses: []string{"127.0.0.1:1", "127.0.0.1:2"},
		Genesis: genesis, EpochLength: 10 * time.Minute, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	d := net.Document
	if d.Epoch != 2 || !d.ValidFrom.Equal(genesis.Add(20*time.Minute)) || !d.ValidUntil.Equal(genesis.Add(30*time.Minute)) {
		t.Fatalf("genesis document: epoch %d from %v until %v", d.Epoch, d.ValidFrom, d.ValidUntil)
	}
	node, err := config.Load(net.Configs["mix-1-a"])
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Directory.AuthorityURLs; len(got) != 2 || got[1] != "http://127.0.0.1:2" {
		t.Fatalf("authority URLs %v", got)
	}
	if node.Node.Name != "mix-1-a" || node.Node.Role != "mix" || node.Node.Address != d.Node(d.Layer(1)[0].IdentityKey).Address {
		t.Fatalf("declaration %+v", node.Node)
	}
	if _, err := keyfile.ReadSphinx(filepath.Join(dir, "mix-1-a", "sphinx-keys"), net.Document.Parameters.Geometry.Scheme, 2); err != nil {
		t.Fatalf("the genesis Sphinx key: %v", err)
	}
}
