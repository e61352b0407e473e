// Package testnet writes everything a backchannel network needs to start: a
// directory authority key, a key set and config file per node, and the
// network document signed by the authority. `backchannel testnet` and the
// demo use it; for a network on several hosts, give each node's address.
//
// It is a generator, not a directory authority. With Follow, the document
// it signs is the genesis of the authorities' epochs (the epoch starting at
// Genesis), and each node's config points at the authorities, which publish
// every later document from the descriptors the nodes upload. Without, the
// document is static: one epoch, valid for Validity, and nodes never look
// for another.
package testnet

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// Options shape the generated network.
type Options struct {
	// Dir is where the files go; it is created if needed.
	Dir string
	// Layers and MixesPerLayer give the mix layers; Providers the number of
	// providers.
	Layers, MixesPerLayer, Providers int
	// Hosts lists the node addresses' hosts, used in turn; empty means
	// 127.0.0.1 for every node.
	Hosts []string
	// BasePort is the first node's link port; node i listens on BasePort+i
	// and serves metrics on 127.0.0.1:MetricsBasePort+i (0: no metrics
	// listener): loopback, as docs/operating.md says metrics belong on a
	// private interface, whatever the node's public host.
	BasePort, MetricsBasePort int
	// Addresses and MetricsAddresses, if set, give every node's addresses
	// in order (providers, then layer by layer), instead of Hosts and the
	// base ports.
	Addresses, MetricsAddresses []string
	// Parameters are the network parameters; the zero value takes
	// DefaultParameters.
	Parameters directory.Parameters
	// Validity is how long a static document is valid from Now.
	Validity time.Duration
	// ClockSkew is how far nodes' and clients' clocks may be off (default
	// config.DefaultClockSkew).
	ClockSkew time.Duration
	// Follow makes the nodes follow the authorities: the document is the
	// genesis epoch's, and node configs carry the authorities' URLs.
	Follow bool
	// ExpireEvery, if set, is how often providers remove expired mailbox
	// packets (their default is a minute).
	ExpireEvery time.Duration
	// DrainTimeout, if set, bounds each node's graceful shutdown (their
	// default is 10 s); Pprof serves Go's profiles on the metrics listener.
	DrainTimeout time.Duration
	Pprof        bool
	// LinksPerSource, if set, is each node's cap on connections from one
	// address (their default is 64): a load generator's clients all come
	// from one loopback address.
	LinksPerSource int
	// Listens, if set, gives every node's listen address in order, where it
	// differs from the published one (a proxy in front of each node).
	Listens []string
	// Authorities is the number of directory authorities (default 1) and
	// Threshold how many must sign a document (default 1).
	// AuthorityAddresses gives each one's HTTP listen address (default
	// 127.0.0.1:32000+i). Genesis and EpochLength set the epochs of their
	// configs (defaults: Now to the second, 10 minutes).
	// AuthorityMetricsAddresses gives each one's metrics and health
	// listener; by default 127.0.0.1:32100+i where the authority addresses
	// are the default ones and MetricsBasePort is set, else none.
	Authorities, Threshold    int
	AuthorityAddresses        []string
	AuthorityMetricsAddresses []string
	Genesis                   time.Time
	EpochLength               time.Duration
	Now                       time.Time
	Rand                      io.Reader
}

// DefaultParameters are the parameters of a generated network: Loopix-like
// rates and a 50 ms mean delay per hop.
func DefaultParameters(layers int) directory.Parameters {
	return directory.Parameters{
		Layers:       uint8(layers),
		MeanDelay:    50 * time.Millisecond,
		SendRate:     2,
		LoopRate:     0.5,
		DropRate:     0.5,
		MixLoopRate:  0.5,
		PollInterval: time.Second,
		Geometry:     sphinx.DefaultGeometry,
	}
}

// LowBandwidthParameters are DefaultParameters for users on slow or metered
// connections: about a quarter of the cover traffic (0.7 packets a second
// instead of 3, and a fetch every 5 seconds), with a mean delay of 200 ms a
// hop instead of 50 so that a mix holds about as many packets at once (the
// anonymity set per hop, by Little's law), for a longer wait: BENCHMARKS.md,
// figure 5, gives the numbers.
func LowBandwidthParameters(layers int) directory.Parameters {
	p := DefaultParameters(layers)
	p.SendRate, p.LoopRate, p.DropRate = 0.5, 0.1, 0.1
	p.PollInterval = 5 * time.Second
	p.MeanDelay = 200 * time.Millisecond
	return p
}

// Network is what Generate wrote.
type Network struct {
	Dir string
	// Authorities are the authorities' keys; Threshold how many must sign.
	Authorities []ed25519.PublicKey
	Threshold   int
	// AuthorityConfigs are the authorities' config files, AuthorityAddresses
	// their HTTP addresses and AuthorityMetrics their metrics listeners
	// ("" for none).
	AuthorityConfigs   []string
	AuthorityAddresses []string
	AuthorityMetrics   []string
	Document           *directory.Document
	// Configs maps node names to their config files, Metrics to their
	// metrics listeners ("" for none).
	Configs map[string]string
	Metrics map[string]string
	// Names lists the nodes in document order.
	Names []string
}

// Generate writes a network's files.
func Generate(opts Options) (*Network, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	net := &Network{Dir: opts.Dir, Configs: map[string]string{}, Metrics: map[string]string{}, Threshold: opts.Threshold}
	authorities, err := writeAuthorityKeys(net, opts)
	if err != nil {
		return nil, err
	}
	doc := genesisDocument(opts)
	for i, p := range plan(opts) {
		node, err := writeNode(net, opts, i, p, doc.Epoch)
		if err != nil {
			return nil, err
		}
		doc.Nodes = append(doc.Nodes, node)
	}
	if err := writeDocument(net, opts, doc, authorities); err != nil {
		return nil, err
	}
	net.Document = doc
	return net, nil
}

// withDefaults checks the options and fills in what was left out.
func (opts Options) withDefaults() (Options, error) {
	if opts.Layers < 1 || opts.MixesPerLayer < 1 || opts.Providers < 1 {
		return opts, fmt.Errorf("testnet: %d layers of %d mixes and %d providers: each must be at least 1", opts.Layers, opts.MixesPerLayer, opts.Providers)
	}
	if opts.Parameters.Layers == 0 {
		opts.Parameters = DefaultParameters(opts.Layers)
	}
	if int(opts.Parameters.Layers) != opts.Layers {
		return opts, fmt.Errorf("testnet: parameters say %d layers, options %d", opts.Parameters.Layers, opts.Layers)
	}
	if len(opts.Hosts) == 0 {
		opts.Hosts = []string{"127.0.0.1"}
	}
	if opts.Authorities == 0 {
		opts.Authorities = 1
	}
	if opts.Threshold == 0 {
		opts.Threshold = 1
	}
	if opts.Threshold > opts.Authorities {
		return opts, fmt.Errorf("testnet: a threshold of %d with %d authorities", opts.Threshold, opts.Authorities)
	}
	if opts.AuthorityAddresses == nil {
		metrics := opts.AuthorityMetricsAddresses == nil && opts.MetricsBasePort != 0 && opts.MetricsAddresses == nil
		for i := range opts.Authorities {
			opts.AuthorityAddresses = append(opts.AuthorityAddresses, fmt.Sprintf("127.0.0.1:%d", 32000+i))
			if metrics {
				opts.AuthorityMetricsAddresses = append(opts.AuthorityMetricsAddresses, fmt.Sprintf("127.0.0.1:%d", 32100+i))
			}
		}
	}
	if opts.AuthorityMetricsAddresses != nil && len(opts.AuthorityMetricsAddresses) != opts.Authorities {
		return opts, fmt.Errorf("testnet: %d authority metrics addresses for %d authorities", len(opts.AuthorityMetricsAddresses), opts.Authorities)
	}
	if len(opts.AuthorityAddresses) != opts.Authorities {
		return opts, fmt.Errorf("testnet: %d authority addresses for %d authorities", len(opts.AuthorityAddresses), opts.Authorities)
	}
	if opts.Genesis.IsZero() {
		opts.Genesis = opts.Now.UTC().Truncate(time.Second)
	}
	if opts.EpochLength == 0 {
		opts.EpochLength = 10 * time.Minute
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = config.DefaultClockSkew
	}
	if opts.Follow && opts.Now.Before(opts.Genesis) {
		return opts, fmt.Errorf("testnet: genesis %v is after now", opts.Genesis)
	}
	nodes := opts.Providers + opts.Layers*opts.MixesPerLayer
	for what, list := range map[string][]string{"addresses": opts.Addresses, "listen addresses": opts.Listens, "metrics addresses": opts.MetricsAddresses} {
		if list != nil && len(list) != nodes {
			return opts, fmt.Errorf("testnet: %d %s for %d nodes", len(list), what, nodes)
		}
	}
	return opts, nil
}

// writeAuthorityKeys makes each authority's key and directory.
func writeAuthorityKeys(net *Network, opts Options) ([]ed25519.PrivateKey, error) {
	var authorities []ed25519.PrivateKey
	for i := range opts.Authorities {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(opts.Rand, seed); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		dir := filepath.Join(opts.Dir, authorityName(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		if err := keyfile.Write(filepath.Join(dir, "authority.key"), keyfile.Identity, seed); err != nil {
			return nil, err
		}
		key := ed25519.NewKeyFromSeed(seed)
		authorities = append(authorities, key)
		net.Authorities = append(net.Authorities, key.Public().(ed25519.PublicKey))
	}
	return authorities, nil
}

// genesisDocument is the document's frame: its epoch and validity, and
// the parameters. With Follow it is the current epoch's of the
// authorities' schedule; without, one static epoch valid for Validity.
func genesisDocument(opts Options) *directory.Document {
	doc := &directory.Document{
		Epoch:      1,
		ValidFrom:  opts.Now.Add(-time.Minute).Truncate(time.Second),
		ValidUntil: opts.Now.Add(opts.Validity).Truncate(time.Second),
		Parameters: opts.Parameters,
	}
	if opts.Follow {
		doc.Epoch = uint64(opts.Now.Sub(opts.Genesis) / opts.EpochLength)
		doc.ValidFrom = opts.Genesis.Add(time.Duration(doc.Epoch) * opts.EpochLength).UTC()
		doc.ValidUntil = doc.ValidFrom.Add(opts.EpochLength)
	}
	return doc
}

// planned is a node to generate.
type planned struct {
	name  string
	role  directory.Role
	layer uint8
}

// plan names the nodes in document order: providers, then layer by layer.
func plan(opts Options) []planned {
	var out []planned
	for i := range opts.Providers {
		out = append(out, planned{fmt.Sprintf("provider-%c", 'a'+i), directory.RoleProvider, 0})
	}
	for layer := 1; layer <= opts.Layers; layer++ {
		for i := range opts.MixesPerLayer {
			out = append(out, planned{fmt.Sprintf("mix-%d-%c", layer, 'a'+i), directory.RoleMix, uint8(layer)})
		}
	}
	return out
}

// writeNode writes the i-th node's keys and config, and returns its entry
// in the document.
func writeNode(net *Network, opts Options, i int, p planned, epoch uint64) (directory.Node, error) {
	dir := filepath.Join(opts.Dir, p.name)
	if err := os.MkdirAll(filepath.Join(dir, "sphinx-keys"), 0o700); err != nil {
		return directory.Node{}, fmt.Errorf("testnet: %w", err)
	}
	seeds := make([]byte, 3*32)
	defer clear(seeds)
	if _, err := io.ReadFull(opts.Rand, seeds); err != nil {
		return directory.Node{}, fmt.Errorf("testnet: %w", err)
	}
	identity := ed25519.NewKeyFromSeed(seeds[:32])
	link, err := wire.GenerateKeypair(bytes.NewReader(seeds[32:64]))
	if err != nil {
		return directory.Node{}, fmt.Errorf("testnet: %w", err)
	}
	scheme := opts.Parameters.Geometry.Scheme
	sphinxKey, err := sphinx.NewPrivateKey(scheme, (*[sphinx.SecretLength]byte)(seeds[64:96]))
	if err != nil {
		return directory.Node{}, fmt.Errorf("testnet: %w", err)
	}
	defer sphinxKey.Wipe()
	sphinxFile, sphinxKind := keyfile.SphinxFile(scheme, epoch)
	node := directory.Node{
		Name: p.name, Role: p.role, Layer: p.layer,
		IdentityKey: identity.Public().(ed25519.PublicKey),
		Address:     fmt.Sprintf("%s:%d", opts.Hosts[i%len(opts.Hosts)], opts.BasePort+i),
	}
	if opts.Addresses != nil {
		node.Address = opts.Addresses[i]
	}
	copy(node.LinkKey[:], link.Public)
	node.SphinxKey = sphinxKey.Public()
	for _, k := range []struct {
		file   string
		kind   keyfile.Kind
		secret []byte
	}{
		{"identity.key", keyfile.Identity, seeds[:32]},
		{"link.key", keyfile.Link, link.Private},
		{filepath.Join("sphinx-keys", sphinxFile), sphinxKind, seeds[64:96]},
	} {
		if err := keyfile.Write(filepath.Join(dir, k.file), k.kind, k.secret); err != nil {
			return directory.Node{}, err
		}
	}
	metrics := ""
	if opts.MetricsBasePort != 0 {
		metrics = fmt.Sprintf("127.0.0.1:%d", opts.MetricsBasePort+i)
	}
	if opts.MetricsAddresses != nil {
		metrics = opts.MetricsAddresses[i]
	}
	cfg := nodeConfig(opts, net, p.name, roleName(p.role), node.Address, metrics)
	if opts.Listens != nil {
		cfg.Node.Listen = opts.Listens[i]
	}
	path := filepath.Join(dir, "node.toml")
	if err := config.Write(path, fmt.Sprintf("backchannel node %q (%s), written by backchannel testnet.", p.name, p.role), cfg); err != nil {
		return directory.Node{}, fmt.Errorf("testnet: %w", err)
	}
	net.Configs[p.name] = path
	net.Metrics[p.name] = metrics
	net.Names = append(net.Names, p.name)
	return node, nil
}

// writeDocument signs the document with every authority and writes it for
// the record, for each node, and (with Follow) for the authorities to
// serve; then the clients' bootstrap and the authorities' configs.
func writeDocument(net *Network, opts Options, doc *directory.Document, authorities []ed25519.PrivateKey) error {
	encoded, err := doc.MarshalBinary()
	if err != nil {
		return err
	}
	signed := directory.Signed{Document: encoded}
	for _, key := range authorities {
		signed.Signatures = append(signed.Signatures, directory.Sign(encoded, key))
	}
	data, err := signed.MarshalBinary()
	if err != nil {
		return err
	}
	// One copy for the record, one in each node's directory: a node that
	// follows the authorities replaces its own at every epoch.
	for _, dir := range append([]string{opts.Dir}, nodeDirs(opts.Dir, net.Names)...) {
		if err := os.WriteFile(filepath.Join(dir, "network.doc"), data, 0o644); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
	}
	if err := config.Write(filepath.Join(opts.Dir, "network.toml"),
		"backchannel network bootstrap for clients, written by backchannel testnet.\n`backchannel init --network network.toml --provider NAME` reads it.",
		clientBootstrap(net.Authorities, net.Threshold, opts.ClockSkew, doc)); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	if err := writeAuthorityConfigs(net, opts, doc); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	// The authorities serve the genesis document as the current one, for
	// nodes that join during the first epoch.
	for i := range net.Authorities {
		docs := filepath.Join(opts.Dir, authorityName(i), "documents")
		if err := os.MkdirAll(docs, 0o700); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
		if err := os.WriteFile(filepath.Join(docs, fmt.Sprintf("epoch-%d.doc", doc.Epoch)), data, 0o600); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
	}
	return nil
}

func nodeDirs(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

func roleName(r directory.Role) string {
	if r == directory.RoleProvider {
		return "provider"
	}
	return "mix"
}

func authorityName(i int) string { return fmt.Sprintf("authority-%d", i+1) }
