// Package config reads a node's configuration file: TOML, decoded strictly
// (an unknown key is an error, so a misspelt setting is not silently
// ignored), with defaults for what may be left out and paths resolved
// relative to the file.
//
// It turns the file into values; reading keys and the network document, and
// building the node, is the command's job.
package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Version is the configuration format version this build reads.
const Version = 1

// DefaultClockSkew is how far a host's clock may be off by default.
const DefaultClockSkew = 5 * time.Minute

// Node is a node's configuration.
type Node struct {
	Version   int         `toml:"version"`
	Node      NodeSection `toml:"node"`
	Directory Directory   `toml:"directory"`
	Queues    Queues      `toml:"queues,omitempty"`
	Provider  Provider    `toml:"provider"`

	dir string // the file's directory, for relative paths
}

// NodeSection is the [node] table.
type NodeSection struct {
	DataDir     string `toml:"data_dir,omitempty"`
	IdentityKey string `toml:"identity_key,omitempty"`
	LinkKey     string `toml:"link_key,omitempty"`
	// SphinxKeys is the directory of the node's per-epoch Sphinx keys
	// (sphinx-epoch-N.key).
	SphinxKeys string `toml:"sphinx_keys,omitempty"`
	// Name, Role and Address are what the node declares of itself to the
	// authorities: needed for a node that is in no document yet; for one
	// that is, they default to its entry there.
	Name    string `toml:"name,omitempty"`
	Role    string `toml:"role,omitempty"`
	Address string `toml:"address,omitempty"`
	// Listen overrides the address the document gives the node.
	Listen string `toml:"listen,omitempty"`
	// Metrics is the address of the metrics and health listener; empty
	// disables it.
	Metrics string `toml:"metrics,omitempty"`
	// Pprof serves Go's profiles (/debug/pprof/) on the metrics listener,
	// to find where a node's time goes. Off by default: profiles show
	// nothing secret, but cost CPU while taken.
	Pprof bool `toml:"pprof,omitempty"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level,omitempty"`
	// DrainTimeout bounds a graceful shutdown: how long the node keeps
	// forwarding what it holds before it exits (default 10s).
	DrainTimeout Duration `toml:"drain_timeout,omitempty"`
	// LinksPerSource bounds the connections one IPv4 address or IPv6 /64
	// may hold open to the node (default 64): raise it for a provider
	// whose users sit behind one NAT.
	LinksPerSource int `toml:"links_per_source,omitzero"`
	// ClassicalLinksUntilEpoch is the epoch from which the node neither
	// takes nor opens classical links (link version 1, which the previous
	// release speaks). Absent or 0: post-quantum links only. While a
	// network moves, every node of this release sets the same epoch
	// (docs/operating.md, "Moving a network to post-quantum links").
	ClassicalLinksUntilEpoch uint64 `toml:"classical_links_until_epoch,omitzero"`
}

// Directory is the [directory] table: where the network document is and whom
// to trust for it.
type Directory struct {
	Document    string   `toml:"document,omitempty"`
	Authorities []string `toml:"authorities"`
	Threshold   int      `toml:"threshold,omitzero"`
	ClockSkew   Duration `toml:"clock_skew,omitempty"`
	// AuthorityURLs are the authorities' HTTP addresses. With them, the
	// node uploads its descriptors and follows the published documents,
	// epoch after epoch; without them it runs on Document alone.
	AuthorityURLs []string `toml:"authority_urls,omitempty"`
}

// Queues is the [queues] table.
type Queues struct {
	Peer           int    `toml:"peer,omitzero"`
	Delay          int    `toml:"delay,omitzero"`
	ReplayExpected uint64 `toml:"replay_expected,omitzero"`
}

// Provider is the [provider] table, used when the document makes the node a
// provider.
type Provider struct {
	Accounts     string   `toml:"accounts,omitempty"`
	MailboxQuota int      `toml:"mailbox_quota,omitzero"`
	Retention    Duration `toml:"retention,omitempty"`
	// ExpireEvery is how often expired packets are removed (default 1m).
	ExpireEvery Duration `toml:"expire_every,omitempty"`
	// ClientPacketRate and ClientPacketBurst bound the packets per second
	// one user may send, and the burst above it; 0 derives them from the
	// document's client rates (twice what a client sends; ten seconds'
	// worth, at least 20). Fetches and other requests have a limit of
	// their own, from the poll interval.
	ClientPacketRate  float64 `toml:"client_packet_rate,omitzero"`
	ClientPacketBurst int     `toml:"client_packet_burst,omitzero"`
	// LinksPerUser bounds the links one user may hold at once (default
	// 4); a new one closes the oldest.
	LinksPerUser int `toml:"links_per_user,omitzero"`
}

// Duration is a time.Duration written as in Go ("90s", "168h").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes a duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Load reads and validates the configuration file at path.
func Load(path string) (*Node, error) {
	var c Node
	if err := decodeStrict(path, &c); err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(path)
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return &c, nil
}

func (c *Node) applyDefaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Node.DataDir, "data")
	set(&c.Node.IdentityKey, "identity.key")
	set(&c.Node.LinkKey, "link.key")
	set(&c.Node.SphinxKeys, "sphinx-keys")
	set(&c.Node.LogLevel, "info")
	set(&c.Directory.Document, "network.doc")
	set(&c.Provider.Accounts, "accounts.txt")
	if c.Node.DrainTimeout.Duration == 0 {
		c.Node.DrainTimeout.Duration = 10 * time.Second
	}
	if c.Directory.Threshold == 0 {
		c.Directory.Threshold = 1
	}
	if c.Directory.ClockSkew.Duration == 0 {
		c.Directory.ClockSkew.Duration = DefaultClockSkew
	}
	if c.Queues.Peer == 0 {
		c.Queues.Peer = 4096
	}
	if c.Queues.Delay == 0 {
		c.Queues.Delay = 100_000
	}
	if c.Queues.ReplayExpected == 0 {
		c.Queues.ReplayExpected = 10_000_000
	}
	if c.Provider.MailboxQuota == 0 {
		c.Provider.MailboxQuota = 10_000
	}
	if c.Provider.ExpireEvery.Duration == 0 {
		c.Provider.ExpireEvery.Duration = time.Minute
	}
	if c.Provider.Retention.Duration == 0 {
		c.Provider.Retention.Duration = 7 * 24 * time.Hour
	}
}

func (c *Node) validate() error {
	var errs []error
	if c.Version != Version {
		errs = append(errs, fmt.Errorf("version = %d, this build reads version %d", c.Version, Version))
	}
	if len(c.Directory.Authorities) == 0 {
		errs = append(errs, errors.New("[directory] authorities: at least one authority key is needed"))
	}
	for i, a := range c.Directory.Authorities {
		if b, err := hex.DecodeString(a); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("[directory] authorities[%d]: want a 32-byte Ed25519 public key in hex", i))
		}
	}
	if c.Directory.Threshold < 1 || c.Directory.Threshold > len(c.Directory.Authorities) {
		errs = append(errs, fmt.Errorf("[directory] threshold = %d, want 1 to %d", c.Directory.Threshold, len(c.Directory.Authorities)))
	}
	for i, a := range c.Directory.AuthorityURLs {
		if u, err := url.Parse(a); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("[directory] authority_urls[%d] = %q: want an http:// or https:// URL", i, a))
		}
	}
	switch c.Node.Role {
	case "", "mix", "provider":
	default:
		errs = append(errs, fmt.Errorf("[node] role = %q, want mix or provider", c.Node.Role))
	}
	if c.Node.DrainTimeout.Duration < 0 {
		errs = append(errs, errors.New("[node] drain_timeout must not be negative"))
	}
	if c.Node.LinksPerSource < 0 {
		errs = append(errs, fmt.Errorf("[node] links_per_source = %d must not be negative", c.Node.LinksPerSource))
	}
	if c.Directory.ClockSkew.Duration < 0 {
		errs = append(errs, errors.New("[directory] clock_skew must not be negative"))
	}
	if c.Queues.Peer < 1 || c.Queues.Delay < 1 {
		errs = append(errs, errors.New("[queues] peer and delay must be positive"))
	}
	if c.Provider.ExpireEvery.Duration <= 0 {
		errs = append(errs, errors.New("[provider] expire_every must be positive"))
	}
	if c.Provider.MailboxQuota < 1 || c.Provider.Retention.Duration <= 0 {
		errs = append(errs, errors.New("[provider] mailbox_quota and retention must be positive"))
	}
	if c.Provider.LinksPerUser < 0 {
		errs = append(errs, fmt.Errorf("[provider] links_per_user = %d must not be negative", c.Provider.LinksPerUser))
	}
	if c.Provider.ClientPacketRate < 0 || c.Provider.ClientPacketBurst < 0 {
		errs = append(errs, errors.New("[provider] client_packet_rate and client_packet_burst must not be negative (0: from the document)"))
	}
	switch c.Node.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("[node] log_level = %q, want debug, info, warn or error", c.Node.LogLevel))
	}
	return errors.Join(errs...)
}

// Path resolves a path from the file against the file's directory.
func (c *Node) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// decodeStrict decodes the TOML file at path into v; a setting v has no
// field for is an error, so that a misspelt one is not silently ignored.
func decodeStrict(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("config: %s: unknown settings: %s", path, strings.Join(keys, ", "))
	}
	return nil
}
