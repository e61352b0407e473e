package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
)

// Authority is a directory authority's configuration.
type Authority struct {
	Version    int              `toml:"version"`
	Authority  AuthoritySection `toml:"authority"`
	Peers      []AuthorityPeer  `toml:"peer"`
	Parameters ParametersTable  `toml:"parameters"`

	dir string
}

// AuthoritySection is the [authority] table.
type AuthoritySection struct {
	IdentityKey string `toml:"identity_key,omitempty"`
	Listen      string `toml:"listen"`
	// Metrics is the address of the metrics and health listener
	// (/metrics, /healthz); empty for none. Put it on a private interface.
	Metrics   string `toml:"metrics,omitempty"`
	Threshold int    `toml:"threshold"`
	// Genesis is when epoch 0 starts and Epoch the length of every epoch:
	// alike at every authority.
	Genesis  time.Time `toml:"genesis"`
	Epoch    Duration  `toml:"epoch"`
	LogLevel string    `toml:"log_level,omitempty"`
	// Admitted lists the node identity keys (hex) the operator approved.
	Admitted []string `toml:"admitted"`
	// Documents is the directory where the published documents are kept
	// (epoch-N.doc), so that a restarted authority still serves them;
	// testnet puts the genesis document there.
	Documents string `toml:"documents,omitempty"`
}

// AuthorityPeer is one [[peer]]: another authority.
type AuthorityPeer struct {
	Key string `toml:"key"`
	URL string `toml:"url"`
}

// ParametersTable is the [parameters] table: the network parameters every
// document carries, alike at every authority.
type ParametersTable struct {
	Layers       int      `toml:"layers"`
	MeanDelay    Duration `toml:"mean_delay"`
	SendRate     float64  `toml:"send_rate"`
	LoopRate     float64  `toml:"loop_rate"`
	DropRate     float64  `toml:"drop_rate"`
	MixLoopRate  float64  `toml:"mix_loop_rate"`
	PollInterval Duration `toml:"poll_interval"`
	MaxHops      int      `toml:"max_hops"`
	Payload      int      `toml:"payload"`
	// PacketFormat is the network's packet format, "xwing" or "x25519";
	// absent, x25519 (the previous release's files have none).
	PacketFormat string `toml:"packet_format,omitempty"`
	// NextPacketFormat, from the epoch NextPacketFormatEpoch on, replaces
	// PacketFormat: how a network moves to another format
	// (docs/operating.md).
	NextPacketFormat      string `toml:"next_packet_format,omitempty"`
	NextPacketFormatEpoch uint64 `toml:"next_packet_format_epoch,omitzero"`
}

// LoadAuthority reads and validates an authority's configuration.
func LoadAuthority(path string) (*Authority, error) {
	var c Authority
	if err := decodeStrict(path, &c); err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(path)
	if c.Authority.Documents == "" {
		c.Authority.Documents = "documents"
	}
	if c.Authority.IdentityKey == "" {
		c.Authority.IdentityKey = "authority.key"
	}
	if c.Authority.LogLevel == "" {
		c.Authority.LogLevel = "info"
	}
	if c.Authority.Threshold == 0 {
		c.Authority.Threshold = 1
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return &c, nil
}

func (c *Authority) validate() error {
	var errs []error
	if c.Version != Version {
		errs = append(errs, fmt.Errorf("version = %d, this program reads version %d", c.Version, Version))
	}
	a := c.Authority
	if a.Listen == "" {
		errs = append(errs, errors.New("[authority] listen is missing"))
	}
	if a.Threshold < 1 || a.Threshold > len(c.Peers)+1 {
		errs = append(errs, fmt.Errorf("[authority] threshold = %d, want 1 to the %d authorities", a.Threshold, len(c.Peers)+1))
	}
	if a.Genesis.IsZero() || a.Epoch.Duration < 8*time.Second {
		errs = append(errs, errors.New("[authority] genesis must be set and epoch at least 8s"))
	}
	for _, k := range a.Admitted {
		if !isHexKey(k) {
			errs = append(errs, fmt.Errorf("[authority] admitted key %q is not 32 bytes of hex", k))
		}
	}
	for _, p := range c.Peers {
		u, err := url.Parse(p.URL)
		if !isHexKey(p.Key) || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("[[peer]] needs a 32-byte hex key and an http(s) URL, not %q %q", p.Key, p.URL))
		}
	}
	switch a.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("[authority] log_level = %q, want debug, info, warn or error", a.LogLevel))
	}
	p := c.Parameters
	if p.Layers < 1 || p.MaxHops < 1 || p.Payload < 1 || p.PollInterval.Duration <= 0 {
		errs = append(errs, errors.New("[parameters] layers, max_hops, payload and poll_interval must be set"))
	}
	if (p.NextPacketFormat == "") != (p.NextPacketFormatEpoch == 0) {
		errs = append(errs, errors.New("[parameters] next_packet_format and next_packet_format_epoch go together"))
	}
	return errors.Join(errs...)
}

// Path resolves a path relative to the file.
func (c *Authority) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// AdmittedKeys returns the admission list as raw keys.
func (c *Authority) AdmittedKeys() [][]byte {
	var out [][]byte
	for _, k := range c.Authority.Admitted {
		b, _ := hex.DecodeString(k)
		out = append(out, b)
	}
	return out
}
