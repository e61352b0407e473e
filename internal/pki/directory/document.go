// Package directory is the network document: what every node and client
// must agree on for an epoch — the nodes, their roles, layers, keys and
// addresses, and the network's parameters — and its signed, versioned
// encoding.
//
// A [Document] is encoded with [Document.MarshalBinary] and signed by the
// directory authorities ([Sign]); a node or client accepts it only through
// [Verify], which checks the signatures against the authority keys it was
// configured with (a threshold of them), the format version, the strict
// encoding and the validity period.
//
// It does not fetch, vote on or publish documents: that is the authority's
// and the node's job.
package directory

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// Role is what a node does in the network.
type Role uint8

const (
	// RoleMix is a mix node in one of the mix layers.
	RoleMix Role = 1
	// RoleProvider is a provider: the entry and exit of the network for
	// its users, keeping their mailboxes.
	RoleProvider Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleMix:
		return "mix"
	case RoleProvider:
		return "provider"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Limits of the encoding.
const (
	// MaxNodes is the largest number of nodes a document may list.
	MaxNodes = 4096
	// MaxNameLength is the longest node name, in bytes.
	MaxNameLength = 64
	// MaxAddressLength is the longest node address, in bytes.
	MaxAddressLength = 255
	// MaxLayers is the largest number of mix layers.
	MaxLayers = 8
	// KeySize is the length of a node's link key, and of an X25519 Sphinx
	// key.
	KeySize = 32
)

// DropRecipient, all zeros, is the recipient that clients' drop cover
// packets name (Loopix's drop messages): a provider discards what is
// addressed to it, and no account may own it as its mailbox.
var DropRecipient [32]byte

// Node is one node's entry.
type Node struct {
	// Name is the operator's name for the node, for logs and metrics.
	Name string
	Role Role
	// Layer is the mix layer, 1..Parameters.Layers, for a mix; 0 for a
	// provider.
	Layer uint8
	// IdentityKey is the node's long-term Ed25519 key: its identity.
	IdentityKey ed25519.PublicKey
	// LinkKey is the node's X25519 key for Noise link handshakes.
	LinkKey [KeySize]byte
	// SphinxKey is the node's Sphinx key for this epoch, of the scheme
	// Parameters.Geometry names.
	SphinxKey *sphinx.PublicKey
	// Address is where the node listens for links, host:port.
	Address string
}

// ID is the node's identifier in Sphinx routing commands: its identity key.
func (n *Node) ID() sphinx.NodeID { return sphinx.NodeID(n.IdentityKey) }

// Parameters are the network-wide settings of an epoch.
type Parameters struct {
	// Layers is the number of mix layers.
	Layers uint8
	// MeanDelay is the mean of the exponential per-hop delay senders
	// choose (Loopix's 1/µ).
	MeanDelay time.Duration
	// LoopRate and DropRate are the Poisson rates (per second) of a
	// client's loop and drop cover packets; SendRate is the rate of its
	// send slots, which carry a real message when one is queued.
	SendRate, LoopRate, DropRate float64
	// MixLoopRate is the Poisson rate (per second) of a mix's own loop
	// packets.
	MixLoopRate float64
	// PollInterval is the fixed interval at which clients fetch their
	// mailbox.
	PollInterval time.Duration
	// Geometry is the Sphinx geometry of every packet.
	Geometry sphinx.Geometry
}

// Document is the network document of one epoch.
type Document struct {
	Epoch      uint64
	ValidFrom  time.Time // second precision
	ValidUntil time.Time // second precision
	Parameters Parameters
	Nodes      []Node
}

// Validate checks the document's internal consistency: parameters in range,
// node roles and layers, distinct identities, names and addresses, and every
// layer served.
func (d *Document) Validate() error {
	if !d.ValidUntil.After(d.ValidFrom) {
		return fmt.Errorf("directory: validity ends (%v) before it starts (%v)", d.ValidUntil, d.ValidFrom)
	}
	p := d.Parameters
	if p.Layers < 1 || p.Layers > MaxLayers {
		return fmt.Errorf("directory: %d mix layers, want 1 to %d", p.Layers, MaxLayers)
	}
	if p.MeanDelay < 0 || p.PollInterval <= 0 {
		return fmt.Errorf("directory: mean delay %v and poll interval %v must be non-negative and positive", p.MeanDelay, p.PollInterval)
	}
	for _, r := range []float64{p.SendRate, p.LoopRate, p.DropRate, p.MixLoopRate} {
		if !(r >= 0 && r <= 1e6) {
			return fmt.Errorf("directory: a cover-traffic rate of %g per second", r)
		}
	}
	if err := p.Geometry.Validate(); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if len(d.Nodes) > MaxNodes {
		return fmt.Errorf("directory: %d nodes, at most %d", len(d.Nodes), MaxNodes)
	}
	identities := map[string]bool{}
	names := map[string]bool{}
	addresses := map[string]bool{}
	served := make([]bool, p.Layers+1)
	providers := 0
	for i := range d.Nodes {
		n := &d.Nodes[i]
		switch {
		case n.Role == RoleMix && (n.Layer < 1 || n.Layer > p.Layers):
			return fmt.Errorf("directory: mix %q in layer %d, want 1 to %d", n.Name, n.Layer, p.Layers)
		case n.Role == RoleProvider && n.Layer != 0:
			return fmt.Errorf("directory: provider %q in layer %d, want 0", n.Name, n.Layer)
		case n.Role != RoleMix && n.Role != RoleProvider:
			return fmt.Errorf("directory: node %q has unknown %v", n.Name, n.Role)
		case len(n.IdentityKey) != ed25519.PublicKeySize:
			return fmt.Errorf("directory: node %q has a %d-byte identity key", n.Name, len(n.IdentityKey))
		case n.Name == "" || len(n.Name) > MaxNameLength:
			return fmt.Errorf("directory: node name %q is empty or longer than %d bytes", n.Name, MaxNameLength)
		case n.Address == "" || len(n.Address) > MaxAddressLength:
			return fmt.Errorf("directory: node %q address is empty or longer than %d bytes", n.Name, MaxAddressLength)
		case identities[string(n.IdentityKey)]:
			return fmt.Errorf("directory: node %q repeats an identity key", n.Name)
		case names[n.Name]:
			return fmt.Errorf("directory: node name %q appears twice", n.Name)
		case addresses[n.Address]:
			return fmt.Errorf("directory: address %q appears twice", n.Address)
		case n.SphinxKey == nil || n.SphinxKey.Scheme() != p.Geometry.Scheme:
			return fmt.Errorf("directory: node %q has no %v Sphinx key, the network's packet format", n.Name, p.Geometry.Scheme)
		}
		identities[string(n.IdentityKey)] = true
		names[n.Name] = true
		addresses[n.Address] = true
		if n.Role == RoleProvider {
			providers++
		} else {
			served[n.Layer] = true
		}
	}
	for layer := 1; layer <= int(p.Layers); layer++ {
		if !served[layer] {
			return fmt.Errorf("directory: no mix in layer %d", layer)
		}
	}
	if providers == 0 {
		return fmt.Errorf("directory: no provider")
	}
	return nil
}

// MaxGrace bounds the grace period of an epoch change.
const MaxGrace = 2 * time.Minute

// Grace is how long after this document's epoch has ended its nodes still
// take packets made with its Sphinx keys: an eighth of the epoch, at most
// MaxGrace. Senders switch to the next document half-way through it, so
// that a sender whose clock is up to Grace/2 fast, or a packet still in
// flight, meets nodes that take both keys.
func (d *Document) Grace() time.Duration {
	return min(d.ValidUntil.Sub(d.ValidFrom)/8, MaxGrace)
}

// Layer returns the mixes of a layer (1..Layers), in document order.
func (d *Document) Layer(layer uint8) []*Node {
	var out []*Node
	for i := range d.Nodes {
		if d.Nodes[i].Role == RoleMix && d.Nodes[i].Layer == layer {
			out = append(out, &d.Nodes[i])
		}
	}
	return out
}

// Providers returns the providers, in document order.
func (d *Document) Providers() []*Node {
	var out []*Node
	for i := range d.Nodes {
		if d.Nodes[i].Role == RoleProvider {
			out = append(out, &d.Nodes[i])
		}
	}
	return out
}

// Node returns the node with the given identity key, or nil.
func (d *Document) Node(identity ed25519.PublicKey) *Node {
	for i := range d.Nodes {
		if d.Nodes[i].IdentityKey.Equal(identity) {
			return &d.Nodes[i]
		}
	}
	return nil
}
