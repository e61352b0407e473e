package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Network is a client's bootstrap file: whom to trust for the network
// document and which providers there are. `backchannel testnet` writes it
// as network.toml; a client picks its provider from it at `backchannel
// init`.
type Network struct {
	Version     int      `toml:"version"`
	Authorities []string `toml:"authorities"`
	Threshold   int      `toml:"threshold"`
	ClockSkew   Duration `toml:"clock_skew"`
	// MaxHops and Payload are the network's packet geometry, which a
	// client needs before its first link (the frames' size follows from
	// it); absent in the files of the previous release, whose networks
	// all had 5 hops and 2,048-byte payloads.
	MaxHops int `toml:"max_hops,omitzero"`
	Payload int `toml:"payload,omitzero"`
	// PacketFormat is the network's packet format, "xwing" or "x25519";
	// absent, x25519 (written only for other formats, so that the
	// previous release reads the files of an X25519 network).
	PacketFormat string            `toml:"packet_format,omitempty"`
	Providers    []NetworkProvider `toml:"provider"`
}

// NetworkProvider is one [[provider]] of the bootstrap file.
type NetworkProvider struct {
	Name        string `toml:"name"`
	Address     string `toml:"address"`
	LinkKey     string `toml:"link_key"`
	IdentityKey string `toml:"identity_key"`
}

// LoadNetwork reads and validates a bootstrap file, strictly.
func LoadNetwork(path string) (*Network, error) {
	var n Network
	if err := decodeStrict(path, &n); err != nil {
		return nil, err
	}
	if n.Threshold == 0 {
		n.Threshold = 1
	}
	if n.ClockSkew.Duration == 0 {
		n.ClockSkew.Duration = DefaultClockSkew
	}
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return &n, nil
}

func (n *Network) validate() error {
	var errs []error
	if n.Version != Version {
		errs = append(errs, fmt.Errorf("version = %d, this program reads version %d", n.Version, Version))
	}
	for _, a := range n.Authorities {
		if !isHexKey(a) {
			errs = append(errs, fmt.Errorf("authority key %q is not 32 bytes of hex", a))
		}
	}
	if n.Threshold < 1 || n.Threshold > len(n.Authorities) {
		errs = append(errs, fmt.Errorf("threshold = %d, want 1 to the %d authorities", n.Threshold, len(n.Authorities)))
	}
	if n.ClockSkew.Duration < 0 {
		errs = append(errs, errors.New("clock_skew must not be negative"))
	}
	if n.MaxHops < 0 || n.Payload < 0 || (n.MaxHops == 0) != (n.Payload == 0) {
		errs = append(errs, fmt.Errorf("max_hops = %d and payload = %d: give both, or neither", n.MaxHops, n.Payload))
	}
	if len(n.Providers) == 0 {
		errs = append(errs, errors.New("no [[provider]]"))
	}
	names := map[string]bool{}
	for _, p := range n.Providers {
		if p.Name == "" || names[p.Name] {
			errs = append(errs, fmt.Errorf("provider name %q is empty or repeated", p.Name))
		}
		names[p.Name] = true
		if p.Address == "" || !isHexKey(p.LinkKey) || !isHexKey(p.IdentityKey) {
			errs = append(errs, fmt.Errorf("provider %q needs an address and 32-byte hex link_key and identity_key", p.Name))
		}
	}
	return errors.Join(errs...)
}

// Provider returns the provider called name.
func (n *Network) Provider(name string) (*NetworkProvider, error) {
	var names []string
	for i := range n.Providers {
		if n.Providers[i].Name == name {
			return &n.Providers[i], nil
		}
		names = append(names, n.Providers[i].Name)
	}
	return nil, fmt.Errorf("config: no provider %q; the network has %s", name, strings.Join(names, ", "))
}

func isHexKey(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}
