package sphinx

import (
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/edwards25519"

	"github.com/backchannel/backchannel/internal/packet/lioness"
	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// PathHop is one hop of a path: the node, its Sphinx public key for the epoch
// and the commands it is to read. Commands must not contain a [NextNodeHop]:
// packet creation appends one at every hop but the last, naming the next hop.
type PathHop struct {
	ID        NodeID
	PublicKey *PublicKey
	Commands  Commands
}

// NewPacket makes a forward packet that carries message along path. The
// message, at most UserPayloadLength bytes, is zero-padded to that length.
//
// It reads from rand, in this order: for X25519 the 32-byte ephemeral scalar,
// for a KEM scheme a 64-byte encapsulation seed for each hop from the first;
// then PerHopRoutingInfoLength·(MaxHops − len(path)) bytes of filler.
func (f *Format) NewPacket(rand io.Reader, path []PathHop, message []byte) ([]byte, error) {
	g := f.geometry
	if len(message) > g.UserPayloadLength {
		return nil, fmt.Errorf("sphinx: message of %d bytes, more than the %d a packet carries", len(message), g.UserPayloadLength)
	}
	if err := checkPath(g, path, false); err != nil {
		return nil, err
	}
	packet := make([]byte, g.PacketLength())
	keys, err := f.newHeader(rand, path, packet[:g.HeaderLength()])
	if err != nil {
		return nil, err
	}
	defer wipeKeys(keys)
	payload := packet[g.HeaderLength():]
	copy(payload[PayloadTagLength:], message)
	for i := len(path) - 1; i >= 0; i-- {
		if err := lioness.Encrypt(keys[i].lionessKey(), keys[i].lionessIV(), payload); err != nil {
			panic("sphinx: internal error: " + err.Error())
		}
	}
	return packet, nil
}

// checkPath checks a path's length and each hop's commands. A SURB's last hop
// must carry a SURB-reply command (or the last hop would check a zero tag that
// only the SURB's creator can see); a forward packet's must not. (A recipient
// command cannot fit beside a next-hop command, so it can only be at the last
// hop.)
func checkPath(g Geometry, path []PathHop, surb bool) error {
	if len(path) < 1 || len(path) > g.MaxHops {
		return fmt.Errorf("sphinx: path of %d hops, want 1 to %d", len(path), g.MaxHops)
	}
	for i, hop := range path {
		terminal := i == len(path)-1
		if hop.PublicKey == nil || hop.PublicKey.scheme != g.Scheme {
			return fmt.Errorf("sphinx: hop %d has no %v public key", i, g.Scheme)
		}
		if err := checkHopCommands(hop.Commands, terminal); err != nil {
			return fmt.Errorf("sphinx: hop %d: %v", i, err)
		}
		if _, ok := hop.Commands.SURBReply(); ok && !(terminal && surb) {
			return fmt.Errorf("sphinx: hop %d: a SURB-reply command belongs only at the last hop of a SURB", i)
		}
	}
	if _, ok := path[len(path)-1].Commands.SURBReply(); surb && !ok {
		return fmt.Errorf("sphinx: the last hop of a SURB needs a SURB-reply command")
	}
	return nil
}

// newHeader writes the header for path into header and returns each hop's
// keys, which the caller must wipe with wipeKeys. It reads its randomness in
// the order the package documentation gives: the hops' secrets (X25519's
// ephemeral scalar, or each hop's encapsulation seed), then the filler.
func (f *Format) newHeader(rand io.Reader, path []PathHop, header []byte) ([]packetKeys, error) {
	g := f.geometry
	n := len(path)
	elementLength := g.Scheme.elementLength()
	elements := make([]byte, n*elementLength)
	keys := make([]packetKeys, n)
	var err error
	if g.Scheme.isKEM() {
		err = encapsulateHops(rand, path, elements, keys)
	} else {
		err = x25519Hops(rand, path, elements, keys)
	}
	if err != nil {
		wipeKeys(keys)
		return nil, err
	}
	beta := header[versionLength+elementLength : g.macOffset()]
	if _, err := io.ReadFull(rand, beta[g.PerHopRoutingInfoLength()*n:]); err != nil {
		wipeKeys(keys)
		return nil, fmt.Errorf("sphinx: failed to read the routing filler: %w", err)
	}
	f.writeHeader(header, path, elements, keys)
	return keys, nil
}

// x25519Hops reads the ephemeral scalar and computes each hop's alpha (into
// elements, 32 bytes each) and keys.
func x25519Hops(rand io.Reader, path []PathHop, elements []byte, keys []packetKeys) error {
	var ephemeral [32]byte
	defer clear(ephemeral[:])
	if _, err := io.ReadFull(rand, ephemeral[:]); err != nil {
		return fmt.Errorf("sphinx: failed to read the ephemeral key: %w", err)
	}
	alphas := make([][GroupElementLength]byte, len(path))
	if err := hopKeys(&ephemeral, path, alphas, keys); err != nil {
		return err
	}
	for i := range alphas {
		copy(elements[i*GroupElementLength:], alphas[i][:])
	}
	return nil
}

// encapsulateHops reads one encapsulation seed per hop and encapsulates to
// each hop's key: the ciphertexts go into elements, the keys derive from the
// shared secrets.
func encapsulateHops(rand io.Reader, path []PathHop, elements []byte, keys []packetKeys) error {
	var seed [EncapsulationSeedLength]byte
	var secret [32]byte
	defer clear(seed[:])
	defer clear(secret[:])
	ciphertextLength := len(elements) / len(path)
	for i := range path {
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return fmt.Errorf("sphinx: failed to read hop %d's encapsulation seed: %w", i, err)
		}
		encapsulate(elements[i*ciphertextLength:(i+1)*ciphertextLength], &secret, path[i].PublicKey, &seed)
		deriveKeys(&keys[i], &secret)
	}
	return nil
}

// writeHeader writes the header for path from each hop's element (alpha or
// ciphertext, concatenated in elements) and keys, with the routing filler
// already in place at the end of beta.
//
// Hop i's keystream KS_i is one hop's routing information (P bytes: 82, or
// 82 + the ciphertext length) longer than beta (R bytes). Its first R − P·i
// bytes encrypt what hop i sees of beta; the rest, pad_i, is what hop i's
// shift moves into view at the end of hop i+1's beta, accumulated over the
// earlier hops. beta is then built from the last hop back, in place: hop i's
// part starts P·i bytes in, and is its commands, the next-hop command, zero
// padding to 82 bytes and, in a KEM scheme, the next hop's ciphertext.
func (f *Format) writeHeader(header []byte, path []PathHop, elements []byte, keys []packetKeys) {
	g := f.geometry
	n := len(path)
	elementLength := g.Scheme.elementLength()
	element := func(i int) []byte { return elements[i*elementLength : (i+1)*elementLength] }
	perHop := g.PerHopRoutingInfoLength()
	routingLength := g.RoutingInfoLength()
	beta := header[versionLength+elementLength : g.macOffset()]

	streamLength := g.keystreamLength()
	keystreams := make([]byte, n*streamLength)
	defer clear(keystreams)
	keystream := func(i int) []byte { return keystreams[i*streamLength : (i+1)*streamLength] }
	pad := func(i int) []byte { return keystream(i)[routingLength-perHop*i:] }
	for i := range n {
		ks := keystream(i)
		keys[i].headerKeystreamXOR(ks[:routingLength], ks[routingLength:])
		if i > 0 {
			subtle.XORBytes(pad(i), pad(i), pad(i-1))
		}
	}

	var mac [MACLength]byte
	for i := n - 1; i >= 0; i-- {
		start := perHop * i
		// The commands are appended in place: checkPath made sure they fit
		// in the hop's 82 bytes.
		frag := beta[start : start+perHop]
		clear(frag)
		cmds := AppendCommands(frag[:0:CommandsLength], path[i].Commands)
		if i < n-1 {
			NextNodeHop{ID: path[i+1].ID, MAC: mac}.appendTo(cmds)
			if g.Scheme.isKEM() {
				copy(frag[CommandsLength:], element(i+1))
			}
		}
		subtle.XORBytes(beta[start:], beta[start:], keystream(i))
		var tail []byte
		if i > 0 {
			tail = pad(i - 1)
		}
		keys[i].headerMAC(&mac, headerVersion[:], element(i), beta[start:], tail)
	}

	copy(header, headerVersion[:])
	copy(header[versionLength:], element(0))
	copy(header[g.macOffset():], mac[:])
}

// headerVersion is the header's associated data: format version 0.
var headerVersion = [versionLength]byte{0, 0}

// hopKeys computes each hop's alpha and keys from the ephemeral scalar.
//
// Sphinx defines hop i's shared secret as the node key multiplied by the
// ephemeral scalar and then by every earlier hop's blinding factor, one
// X25519 at a time: about n²/2 + 2n ladders. All these points lie in the
// prime-order subgroup, so instead the clamped scalars are multiplied
// together modulo the group order ℓ (c_i = x·b_0·…·b_{i-1}), alpha_i is the
// fixed-base product c_i·G, and the secret is one ladder with the scalar
// 8·(c_i·8⁻¹ mod ℓ). That scalar equals c_i modulo ℓ, so an honest node key
// gives exactly the naive result (tested differentially), while any
// small-order component of a dishonest key is multiplied away instead of
// revealing c_i modulo the cofactor. A key that is nothing but a small-order
// point gives the all-zero secret, which is refused.
func hopKeys(ephemeral *[32]byte, path []PathHop, alphas [][GroupElementLength]byte, keys []packetKeys) error {
	c, err := edwards25519.NewScalar().SetBytesWithClamping(ephemeral[:])
	if err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	defer c.Set(edwards25519.NewScalar())
	var d, b edwards25519.Scalar
	var cofactorScalar, secret, blinding [32]byte
	defer clear(cofactorScalar[:])
	defer clear(secret[:])
	defer clear(blinding[:])

	for i := range path {
		if err := x25519.ScalarBaseMultScalar(&alphas[i], c); err != nil {
			panic("sphinx: internal error: blinded ephemeral key is the identity")
		}
		d.Multiply(c, inverseOfEight)
		timesEight(&cofactorScalar, &d)
		if err := x25519.ScalarMultUnclamped(&secret, &cofactorScalar, &path[i].PublicKey.x25519); err != nil {
			return fmt.Errorf("sphinx: hop %d: public key %x has low order", i, path[i].PublicKey.x25519)
		}
		deriveKeys(&keys[i], &secret)
		if i == len(path)-1 {
			break
		}
		keys[i].blindingFactor(&blinding)
		if _, err := b.SetBytesWithClamping(blinding[:]); err != nil {
			panic("sphinx: internal error: " + err.Error())
		}
		c.Multiply(c, &b)
	}
	d.Set(edwards25519.NewScalar())
	b.Set(edwards25519.NewScalar())
	return nil
}

// inverseOfEight is 8⁻¹ modulo the group order ℓ = 2^252 +
// 27742317777372353535851937790883648493, little-endian.
var inverseOfEight = mustScalar([]byte{
	0x79, 0x2f, 0xdc, 0xe2, 0x29, 0xe5, 0x06, 0x61, 0xd0, 0xda, 0x1c, 0x7d, 0xb3, 0x9d, 0xd3, 0x07,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
})

func mustScalar(b []byte) *edwards25519.Scalar {
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		panic("sphinx: internal error: " + err.Error())
	}
	return s
}

// timesEight writes 8·d as a 256-bit little-endian integer (d < ℓ < 2^253,
// so it fits).
func timesEight(out *[32]byte, d *edwards25519.Scalar) {
	db := d.Bytes()
	var carry byte
	for i := range db {
		out[i] = db[i]<<3 | carry
		carry = db[i] >> 5
	}
	clear(db)
}

func wipeKeys(keys []packetKeys) {
	for i := range keys {
		clear(keys[i][:])
	}
}
