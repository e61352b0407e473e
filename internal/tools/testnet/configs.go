package testnet

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// The configuration files Generate writes: nodes', authorities' and the
// clients' bootstrap.

// hexKeys writes keys in hex, as configuration files list them.
func hexKeys(keys []ed25519.PublicKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, hex.EncodeToString(k))
	}
	return out
}

// nodeConfig is a node's configuration file.
func nodeConfig(opts Options, net *Network, name, role, address, metrics string) *config.Node {
	cfg := &config.Node{
		Version: config.Version,
		Node: config.NodeSection{
			Name: name, Role: role, Address: address,
			DataDir: "data", IdentityKey: "identity.key", LinkKey: "link.key", SphinxKeys: "sphinx-keys",
			Metrics: metrics, Pprof: opts.Pprof, DrainTimeout: config.Duration{Duration: opts.DrainTimeout},
			LinksPerSource: opts.LinksPerSource,
		},
		Directory: config.Directory{
			Document:    "network.doc",
			Authorities: hexKeys(net.Authorities),
			Threshold:   net.Threshold,
			ClockSkew:   config.Duration{Duration: opts.ClockSkew},
		},
		Provider: config.Provider{Accounts: "accounts.txt", ExpireEvery: config.Duration{Duration: opts.ExpireEvery}},
	}
	if opts.Follow {
		for _, a := range opts.AuthorityAddresses {
			cfg.Directory.AuthorityURLs = append(cfg.Directory.AuthorityURLs, "http://"+a)
		}
	}
	return cfg
}

// writeAuthorityConfigs writes each authority's config: its peers, the
// admission list (every generated node), the epochs and the parameters.
func writeAuthorityConfigs(net *Network, opts Options, doc *directory.Document) error {
	var admitted []ed25519.PublicKey
	for _, n := range doc.Nodes {
		admitted = append(admitted, n.IdentityKey)
	}
	p := doc.Parameters
	for i := range net.Authorities {
		cfg := &config.Authority{
			Version: config.Version,
			Authority: config.AuthoritySection{
				IdentityKey: "authority.key", Documents: "documents", Listen: opts.AuthorityAddresses[i],
				Threshold: net.Threshold, Genesis: opts.Genesis, Epoch: config.Duration{Duration: opts.EpochLength},
				Admitted: hexKeys(admitted),
			},
			Parameters: config.ParametersTable{
				Layers: int(p.Layers), MeanDelay: config.Duration{Duration: p.MeanDelay},
				SendRate: p.SendRate, LoopRate: p.LoopRate, DropRate: p.DropRate, MixLoopRate: p.MixLoopRate,
				PollInterval: config.Duration{Duration: p.PollInterval},
				MaxHops:      p.Geometry.MaxHops, Payload: p.Geometry.UserPayloadLength,
				PacketFormat: formatName(p.Geometry),
			},
		}
		if opts.AuthorityMetricsAddresses != nil {
			cfg.Authority.Metrics = opts.AuthorityMetricsAddresses[i]
		}
		for j, k := range net.Authorities {
			if j != i {
				cfg.Peers = append(cfg.Peers, config.AuthorityPeer{Key: hex.EncodeToString(k), URL: "http://" + opts.AuthorityAddresses[j]})
			}
		}
		path := filepath.Join(opts.Dir, authorityName(i), "authority.toml")
		comment := fmt.Sprintf("backchannel directory authority %d of %d, written by backchannel testnet.", i+1, len(net.Authorities))
		if err := config.Write(path, comment, cfg); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
		net.AuthorityConfigs = append(net.AuthorityConfigs, path)
		net.AuthorityAddresses = append(net.AuthorityAddresses, opts.AuthorityAddresses[i])
		net.AuthorityMetrics = append(net.AuthorityMetrics, cfg.Authority.Metrics)
	}
	return nil
}

// formatName is g's packet format as configuration files name it: nothing
// for X25519, so that the previous release reads the files of such a
// network.
func formatName(g sphinx.Geometry) string {
	if g.Scheme == sphinx.X25519 {
		return ""
	}
	return g.Scheme.String()
}

// clientBootstrap is the network.toml clients start from: the authorities
// and the providers.
func clientBootstrap(authorities []ed25519.PublicKey, threshold int, skew time.Duration, doc *directory.Document) *config.Network {
	g := doc.Parameters.Geometry
	n := &config.Network{Version: config.Version, Authorities: hexKeys(authorities), Threshold: threshold, ClockSkew: config.Duration{Duration: skew},
		MaxHops: g.MaxHops, Payload: g.UserPayloadLength, PacketFormat: formatName(g)}
	for _, p := range doc.Providers() {
		n.Providers = append(n.Providers, config.NetworkProvider{
			Name: p.Name, Address: p.Address, LinkKey: hex.EncodeToString(p.LinkKey[:]), IdentityKey: hex.EncodeToString(p.IdentityKey),
		})
	}
	return n
}
