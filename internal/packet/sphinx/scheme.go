package sphinx

import (
	"fmt"

	"github.com/cloudflare/circl/kem/xwing"
)

// Scheme is how a header gives each hop its shared secret, and with it the
// header's layout. A network uses one scheme; it is part of the [Geometry].
type Scheme uint8

const (
	// X25519 is the Sphinx of Danezis and Goldberg as Katzenpost builds it:
	// one group element, blinded by every hop for the next. Its headers
	// open to anyone who can solve X25519 and holds the node keys'
	// public halves: recorded packets are not safe from a quantum computer.
	X25519 Scheme = 0
	// XWing is Katzenpost's KEM Sphinx with the X-Wing KEM
	// (ML-KEM-768 combined with X25519): every hop has its own
	// encapsulation inside the routing information, so a recorded header
	// opens only if both ML-KEM-768 and X25519 fall.
	XWing Scheme = 1

	// mlkem768Vectors is Katzenpost's KEM Sphinx with ML-KEM-768 alone. It
	// exists only so that the construction can also be checked against
	// Katzenpost's ML-KEM-768 vectors (a second ciphertext length); it has
	// no keys, [Geometry.Validate] refuses it, and no network can use it.
	mlkem768Vectors Scheme = 0xfe
)

// Schemes lists the schemes a network may use, the default first.
var Schemes = []Scheme{XWing, X25519}

// mlkem768CiphertextLength is the length of an ML-KEM-768 ciphertext
// (FIPS 203), for the vector-only scheme.
const mlkem768CiphertextLength = 1088

// String is the scheme's name in configuration files and documents.
func (s Scheme) String() string {
	switch s {
	case X25519:
		return "x25519"
	case XWing:
		return "xwing"
	case mlkem768Vectors:
		return "mlkem768-vectors"
	}
	return fmt.Sprintf("scheme(%d)", uint8(s))
}

// ParseScheme returns the scheme named name ("xwing" or "x25519").
func ParseScheme(name string) (Scheme, error) {
	for _, s := range Schemes {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("sphinx: unknown packet format %q, want xwing or x25519", name)
}

// known reports whether s is a scheme a network may use.
func (s Scheme) known() bool { return s == X25519 || s == XWing }

// elementLength is the length of the header's per-hop secret carrier: alpha
// (a u-coordinate) for X25519, the hop's KEM ciphertext otherwise.
func (s Scheme) elementLength() int {
	switch s {
	case XWing:
		return xwing.CiphertextSize
	case mlkem768Vectors:
		return mlkem768CiphertextLength
	}
	return GroupElementLength
}

// isKEM reports whether every hop has its own ciphertext in the routing
// information (KEM Sphinx) rather than a blinded group element.
func (s Scheme) isKEM() bool { return s != X25519 }

// PublicKeyLength is the length of a node's encoded public key.
func (s Scheme) PublicKeyLength() int {
	if s == XWing {
		return xwing.PublicKeySize
	}
	return GroupElementLength
}
