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
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/backchannel/backchannel/internal/config"
	"github.com/backchannel/backchannel/internal/directory"
	"github.com/backchannel/backchannel/internal/keyfile"
	"github.com/backchannel/backchannel/internal/sphinx"
	"github.com/backchannel/backchannel/internal/wire"
	"github.com/backchannel/backchannel/internal/x25519"
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
	// and serves metrics on MetricsBasePort+i (0: no metrics listener).
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
	// Authorities is the number of directory authorities (default 1) and
	// Threshold how many must sign a document (default 1).
	// AuthorityAddresses gives each one's HTTP listen address (default
	// 127.0.0.1:32000+i). Genesis and EpochLength set the epochs of their
	// configs (defaults: Now to the second, 10 minutes).
	Authorities, Threshold int
	AuthorityAddresses     []string
	Genesis                time.Time
	EpochLength            time.Duration
	Now                    time.Time
	Rand                   io.Reader
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

// Network is what Generate wrote.
type Network struct {
	Dir string
	// Authorities are the authorities' keys; Threshold how many must sign.
	Authorities []ed25519.PublicKey
	Threshold   int
	// AuthorityConfigs are the authorities' config files.
	AuthorityConfigs []string
	Document         *directory.Document
	// Configs maps node names to their config files.
	Configs map[string]string
	// Names lists the nodes in document order.
	Names []string
}

// Generate writes a network's files.
func Generate(opts Options) (*Network, error) {
	if opts.Layers < 1 || opts.MixesPerLayer < 1 || opts.Providers < 1 {
		return nil, fmt.Errorf("testnet: %d layers of %d mixes and %d providers: each must be at least 1", opts.Layers, opts.MixesPerLayer, opts.Providers)
	}
	if opts.Parameters.Layers == 0 {
		opts.Parameters = DefaultParameters(opts.Layers)
	}
	if int(opts.Parameters.Layers) != opts.Layers {
		return nil, fmt.Errorf("testnet: parameters say %d layers, options %d", opts.Parameters.Layers, opts.Layers)
	}
	if len(opts.Hosts) == 0 {
		opts.Hosts = []string{"127.0.0.1"}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	net := &Network{Dir: opts.Dir, Configs: map[string]string{}}

	if opts.Authorities == 0 {
		opts.Authorities = 1
	}
	if opts.Threshold == 0 {
		opts.Threshold = 1
	}
	if opts.Threshold > opts.Authorities {
		return nil, fmt.Errorf("testnet: a threshold of %d with %d authorities", opts.Threshold, opts.Authorities)
	}
	if opts.AuthorityAddresses == nil {
		for i := range opts.Authorities {
			opts.AuthorityAddresses = append(opts.AuthorityAddresses, fmt.Sprintf("127.0.0.1:%d", 32000+i))
		}
	}
	if len(opts.AuthorityAddresses) != opts.Authorities {
		return nil, fmt.Errorf("testnet: %d authority addresses for %d authorities", len(opts.AuthorityAddresses), opts.Authorities)
	}
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
	net.Threshold = opts.Threshold

	if opts.Genesis.IsZero() {
		opts.Genesis = opts.Now.UTC().Truncate(time.Second)
	}
	if opts.EpochLength == 0 {
		opts.EpochLength = 10 * time.Minute
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = config.DefaultClockSkew
	}
	doc := &directory.Document{
		Epoch:      1,
		ValidFrom:  opts.Now.Add(-time.Minute).Truncate(time.Second),
		ValidUntil: opts.Now.Add(opts.Validity).Truncate(time.Second),
		Parameters: opts.Parameters,
	}
	if opts.Follow {
		if opts.Now.Before(opts.Genesis) {
			return nil, fmt.Errorf("testnet: genesis %v is after now", opts.Genesis)
		}
		doc.Epoch = uint64(opts.Now.Sub(opts.Genesis) / opts.EpochLength)
		doc.ValidFrom = opts.Genesis.Add(time.Duration(doc.Epoch) * opts.EpochLength).UTC()
		doc.ValidUntil = doc.ValidFrom.Add(opts.EpochLength)
	}
	type planned struct {
		name  string
		role  directory.Role
		layer uint8
	}
	nodes := opts.Providers + opts.Layers*opts.MixesPerLayer
	if opts.Addresses != nil && len(opts.Addresses) != nodes {
		return nil, fmt.Errorf("testnet: %d addresses for %d nodes", len(opts.Addresses), nodes)
	}
	if opts.MetricsAddresses != nil && len(opts.MetricsAddresses) != nodes {
		return nil, fmt.Errorf("testnet: %d metrics addresses for %d nodes", len(opts.MetricsAddresses), nodes)
	}
	var plan []planned
	for i := range opts.Providers {
		plan = append(plan, planned{fmt.Sprintf("provider-%c", 'a'+i), directory.RoleProvider, 0})
	}
	for layer := 1; layer <= opts.Layers; layer++ {
		for i := range opts.MixesPerLayer {
			plan = append(plan, planned{fmt.Sprintf("mix-%d-%c", layer, 'a'+i), directory.RoleMix, uint8(layer)})
		}
	}
	for i, p := range plan {
		dir := filepath.Join(opts.Dir, p.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		seeds := make([]byte, 3*32)
		if _, err := io.ReadFull(opts.Rand, seeds); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		identity := ed25519.NewKeyFromSeed(seeds[:32])
		link, err := wire.GenerateKeypair(strings.NewReader(string(seeds[32:64])))
		if err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		sphinxKey := (*[32]byte)(seeds[64:96])
		node := directory.Node{
			Name: p.name, Role: p.role, Layer: p.layer,
			IdentityKey: identity.Public().(ed25519.PublicKey),
			Address:     fmt.Sprintf("%s:%d", opts.Hosts[i%len(opts.Hosts)], opts.BasePort+i),
		}
		if opts.Addresses != nil {
			node.Address = opts.Addresses[i]
		}
		copy(node.LinkKey[:], link.Public)
		if err := x25519.ScalarBaseMult(&node.SphinxKey, sphinxKey); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "sphinx-keys"), 0o700); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		for _, k := range []struct {
			file   string
			kind   keyfile.Kind
			secret []byte
		}{
			{"identity.key", keyfile.Identity, seeds[:32]},
			{"link.key", keyfile.Link, link.Private},
			{filepath.Join("sphinx-keys", fmt.Sprintf("sphinx-epoch-%d.key", doc.Epoch)), keyfile.Sphinx, sphinxKey[:]},
		} {
			if err := keyfile.Write(filepath.Join(dir, k.file), k.kind, k.secret); err != nil {
				return nil, err
			}
		}
		clear(seeds)
		metrics := ""
		if opts.MetricsBasePort != 0 {
			metrics = fmt.Sprintf("%s:%d", opts.Hosts[i%len(opts.Hosts)], opts.MetricsBasePort+i)
		}
		if opts.MetricsAddresses != nil {
			metrics = opts.MetricsAddresses[i]
		}
		config := fmt.Sprintf(configTemplate, p.name, p.role, p.name, roleName(p.role), node.Address, metrics, quotedKeys(net.Authorities), net.Threshold, opts.ClockSkew.String())
		if opts.Follow {
			var urls []string
			for _, a := range opts.AuthorityAddresses {
				urls = append(urls, fmt.Sprintf("%q", "http://"+a))
			}
			config += fmt.Sprintf("authority_urls = [%s]\n", strings.Join(urls, ", "))
		}
		config += "\n[provider]\naccounts = \"accounts.txt\"\n"
		if opts.ExpireEvery > 0 {
			config += fmt.Sprintf("expire_every = %q\n", opts.ExpireEvery.String())
		}
		path := filepath.Join(dir, "node.toml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		net.Configs[p.name] = path
		net.Names = append(net.Names, p.name)
		doc.Nodes = append(doc.Nodes, node)
	}

	encoded, err := doc.MarshalBinary()
	if err != nil {
		return nil, err
	}
	signed := directory.Signed{Document: encoded}
	for _, key := range authorities {
		signed.Signatures = append(signed.Signatures, directory.Sign(encoded, key))
	}
	data, err := signed.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// One copy for the record, one in each node's directory: a node that
	// follows the authorities replaces its own at every epoch.
	for _, dir := range append([]string{opts.Dir}, nodeDirs(opts.Dir, net.Names)...) {
		if err := os.WriteFile(filepath.Join(dir, "network.doc"), data, 0o644); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, "network.toml"), clientBootstrap(net.Authorities, net.Threshold, opts.ClockSkew, doc), 0o644); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	if err := writeAuthorityConfigs(net, opts, doc); err != nil {
		return nil, err
	}
	if opts.Follow {
		// The authorities serve the genesis document as the current one,
		// for nodes that join during the first epoch.
		for i := range net.Authorities {
			docs := filepath.Join(opts.Dir, authorityName(i), "documents")
			if err := os.MkdirAll(docs, 0o700); err != nil {
				return nil, fmt.Errorf("testnet: %w", err)
			}
			if err := os.WriteFile(filepath.Join(docs, fmt.Sprintf("epoch-%d.doc", doc.Epoch)), data, 0o600); err != nil {
				return nil, fmt.Errorf("testnet: %w", err)
			}
		}
	}
	net.Document = doc
	return net, nil
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

// quotedKeys is a TOML list of hex keys.
func quotedKeys(keys []ed25519.PublicKey) string {
	var q []string
	for _, k := range keys {
		q = append(q, fmt.Sprintf("%q", hex.EncodeToString(k)))
	}
	return strings.Join(q, ", ")
}

// writeAuthorityConfigs writes each authority's config: its peers, the
// admission list (every generated node), the epochs and the parameters.
func writeAuthorityConfigs(net *Network, opts Options, doc *directory.Document) error {
	genesis, epoch := opts.Genesis, opts.EpochLength
	var admitted []ed25519.PublicKey
	for _, n := range doc.Nodes {
		admitted = append(admitted, n.IdentityKey)
	}
	p := doc.Parameters
	for i := range net.Authorities {
		var b strings.Builder
		fmt.Fprintf(&b, "# backchannel directory authority %d of %d, written by backchannel testnet.\nversion = 1\n\n", i+1, len(net.Authorities))
		fmt.Fprintf(&b, "[authority]\nidentity_key = \"authority.key\"\ndocuments = \"documents\"\nlisten = %q\nthreshold = %d\ngenesis = %s\nepoch = %q\n",
			opts.AuthorityAddresses[i], net.Threshold, genesis.Format(time.RFC3339), epoch.String())
		fmt.Fprintf(&b, "admitted = [%s]\n", quotedKeys(admitted))
		for j, k := range net.Authorities {
			if j != i {
				fmt.Fprintf(&b, "\n[[peer]]\nkey = %q\nurl = %q\n", hex.EncodeToString(k), "http://"+opts.AuthorityAddresses[j])
			}
		}
		fmt.Fprintf(&b, "\n[parameters]\nlayers = %d\nmean_delay = %q\nsend_rate = %v\nloop_rate = %v\ndrop_rate = %v\nmix_loop_rate = %v\npoll_interval = %q\nmax_hops = %d\npayload = %d\n",
			p.Layers, p.MeanDelay.String(), p.SendRate, p.LoopRate, p.DropRate, p.MixLoopRate, p.PollInterval.String(), p.Geometry.MaxHops, p.Geometry.UserPayloadLength)
		path := filepath.Join(opts.Dir, authorityName(i), "authority.toml")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
		net.AuthorityConfigs = append(net.AuthorityConfigs, path)
	}
	return nil
}

// clientBootstrap is the network.toml clients start from: the authority and
// the providers.
func clientBootstrap(authorities []ed25519.PublicKey, threshold int, skew time.Duration, doc *directory.Document) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# backchannel network bootstrap for clients, written by backchannel testnet.\n")
	fmt.Fprintf(&b, "# `backchannel init --network network.toml --provider NAME` reads it.\n")
	fmt.Fprintf(&b, "version = 1\nauthorities = [%s]\nthreshold = %d\nclock_skew = %q\n", quotedKeys(authorities), threshold, skew.String())
	for _, p := range doc.Providers() {
		fmt.Fprintf(&b, "\n[[provider]]\nname = %q\naddress = %q\nlink_key = %q\nidentity_key = %q\n",
			p.Name, p.Address, hex.EncodeToString(p.LinkKey[:]), hex.EncodeToString(p.IdentityKey))
	}
	return []byte(b.String())
}

const configTemplate = `# backchannel node %q (%s), written by backchannel testnet.
version = 1

[node]
name = %q
role = %q
address = %q
data_dir = "data"
identity_key = "identity.key"
link_key = "link.key"
sphinx_keys = "sphinx-keys"
metrics = %q

[directory]
document = "network.doc"
authorities = [%s]
threshold = %d
clock_skew = %q
`
