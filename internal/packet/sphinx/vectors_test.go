package sphinx

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/lioness"
	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// The vectors in testdata come from Katzenpost (testdata/README.txt gives
// their origin and license). Their geometry: 5 hops, 103-byte user payload.
var vectorGeometry = Geometry{MaxHops: 5, UserPayloadLength: 103}

// decodeJSON decodes a vector file strictly: an unknown field is an error, so
// a renamed field cannot silently skip a check.
func decodeJSON(t *testing.T, name string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func unhex32(t testing.TB, s string) *[32]byte {
	t.Helper()
	b := unhex(t, s)
	if len(b) != 32 {
		t.Fatalf("%q: %d bytes, want 32", s, len(b))
	}
	return (*[32]byte)(b)
}

// primitiveFile is the envelope of testdata/primitives/*.json; Vectors is
// decoded per primitive.
type primitiveFile[V any] struct {
	FormatVersion int    `json:"format_version"`
	Generator     string `json:"generator"`
	Primitive     string `json:"primitive"`
	Description   string `json:"description"`
	Vectors       []V    `json:"vectors"`
}

func loadPrimitive[V any](t *testing.T, name, primitive string) []V {
	t.Helper()
	var f primitiveFile[V]
	decodeJSON(t, filepath.Join("primitives", name), &f)
	if f.FormatVersion != 1 || f.Primitive != primitive {
		t.Fatalf("%s: format %d, primitive %q; want 1, %q", name, f.FormatVersion, f.Primitive, primitive)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return f.Vectors
}

// TestPrimitiveVectors checks every primitive vector but AEZ's (backchannel
// uses LIONESS, checked in package lioness): KDF, AES-256-CTR, HMAC-SHA256,
// SHA-512/256 and the ChaCha20 blinding scalar.
func TestPrimitiveVectors(t *testing.T) {
	t.Run("kdf", func(t *testing.T) {
		type vector struct {
			Name         string `json:"name"`
			IKM          string `json:"ikm_hex"`
			HeaderMAC    string `json:"header_mac_hex"`
			HeaderKey    string `json:"header_encryption_hex"`
			HeaderIV     string `json:"header_encryption_iv_hex"`
			PayloadKey   string `json:"payload_encryption_hex"`
			BlindingSeed string `json:"blinding_factor_seed_hex"`
		}
		for _, v := range loadPrimitive[vector](t, "kdf_sphinx.json", "kdf_sphinx") {
			var k packetKeys
			deriveKeys(&k, unhex32(t, v.IKM))
			want := unhex(t, v.HeaderMAC+v.HeaderKey+v.HeaderIV+v.PayloadKey+v.BlindingSeed)
			if !bytes.Equal(k[:katzenpostKDFLength], want) {
				t.Errorf("%s: KDF = %x, want %x", v.Name, k[:katzenpostKDFLength], want)
			}
			// HKDF-Expand is prefix-stable: the 336-byte expansion starts
			// with exactly Katzenpost's 160 bytes.
			short, err := hkdf.Expand(sha256.New, unhex(t, v.IKM), kdfInfo, katzenpostKDFLength)
			if err != nil || !bytes.Equal(short, k[:katzenpostKDFLength]) {
				t.Errorf("%s: the 336-byte expansion does not extend the 160-byte one", v.Name)
			}
		}
	})
	t.Run("aes256ctr", func(t *testing.T) {
		type vector struct {
			Name      string `json:"name"`
			Key       string `json:"key_hex"`
			IV        string `json:"iv_hex"`
			Length    int    `json:"length"`
			Keystream string `json:"keystream_hex"`
		}
		for _, v := range loadPrimitive[vector](t, "stream_aes256ctr.json", "stream_aes256ctr") {
			var k packetKeys
			copy(k[headerKeyOffset:], unhex(t, v.Key))
			copy(k[headerIVOffset:], unhex(t, v.IV))
			got := make([]byte, v.Length)
			k.headerKeystreamXOR(got, nil)
			if want := unhex(t, v.Keystream); !bytes.Equal(got, want) {
				t.Errorf("%s: keystream %x, want %x", v.Name, got, want)
			}
		}
	})
	t.Run("hmac_sha256", func(t *testing.T) {
		type vector struct {
			Name string `json:"name"`
			Key  string `json:"key_hex"`
			Msg  string `json:"msg_hex"`
			MAC  string `json:"mac_hex"`
		}
		for _, v := range loadPrimitive[vector](t, "mac_hmac_sha256.json", "hmac_sha256") {
			var k packetKeys
			copy(k[headerMACKeyOffset:], unhex(t, v.Key))
			var got [MACLength]byte
			msg := unhex(t, v.Msg)
			k.headerMAC(&got, msg[:len(msg)/2], msg[len(msg)/2:])
			if want := unhex(t, v.MAC); !bytes.Equal(got[:], want) {
				t.Errorf("%s: MAC %x, want %x", v.Name, got, want)
			}
		}
	})
	t.Run("sha512_256", func(t *testing.T) {
		type vector struct {
			Name   string `json:"name"`
			Input  string `json:"input_hex"`
			Output string `json:"output_hex"`
		}
		for _, v := range loadPrimitive[vector](t, "hash_sha512_256.json", "sha512_256") {
			got := sha512.Sum512_256(unhex(t, v.Input))
			if want := unhex(t, v.Output); !bytes.Equal(got[:], want) {
				t.Errorf("%s: %x, want %x", v.Name, got, want)
			}
		}
	})
	t.Run("chacha20_blinding", func(t *testing.T) {
		type vector struct {
			Name      string `json:"name"`
			Key       string `json:"key_hex"`
			Keystream string `json:"keystream_hex"`
		}
		for _, v := range loadPrimitive[vector](t, "chacha20_deterministic_rand.json", "chacha20_deterministic_rand") {
			var k packetKeys
			copy(k[blindingSeedOffset:], unhex(t, v.Key))
			var got [32]byte
			k.blindingFactor(&got)
			if want := unhex(t, v.Keystream); !bytes.Equal(got[:], want) {
				t.Errorf("%s: %x, want %x", v.Name, got, want)
			}
		}
	})
}

// TestCommandVectors checks the encoding and parsing of every command in
// sphinx_commands_vectors.json.
func TestCommandVectors(t *testing.T) {
	var v struct {
		NextHopID        string
		NextHopMAC       string
		NextHopCmdWant   string
		RecipientID      string
		RecipientCmdWant string
		SURBReplyID      string
		SURBReplyCmdWant string
		NodeDelay        uint32
		NodeDelayCmdWant string
	}
	decodeJSON(t, "sphinx_commands_vectors.json", &v)
	var next NextNodeHop
	copy(next.ID[:], unhex(t, v.NextHopID))
	copy(next.MAC[:], unhex(t, v.NextHopMAC))
	var rcpt Recipient
	copy(rcpt.ID[:], unhex(t, v.RecipientID))
	var surb SURBReply
	copy(surb.ID[:], unhex(t, v.SURBReplyID))
	delay := NodeDelay{Milliseconds: v.NodeDelay}

	for _, c := range []struct {
		cmd  Command
		want string
	}{
		{next, v.NextHopCmdWant},
		{rcpt, v.RecipientCmdWant},
		{surb, v.SURBReplyCmdWant},
		{delay, v.NodeDelayCmdWant},
	} {
		want := unhex(t, c.want)
		got := AppendCommands(nil, Commands{c.cmd})
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoded %x, want %x", c.cmd.Type(), got, want)
		}
		parsed, err := ParseCommands(want)
		if err != nil {
			t.Errorf("%s: parse %x: %v", c.cmd.Type(), want, err)
			continue
		}
		if len(parsed) != 1 || parsed[0] != c.cmd {
			t.Errorf("%s: parsed %#v, want %#v", c.cmd.Type(), parsed, c.cmd)
		}
	}
}

type sphinxVector struct {
	Nodes []struct {
		ID         string
		PrivateKey string
	}
	Path []struct {
		ID        string
		PublicKey string
		Commands  []string
	}
	Packets  []string
	Payload  string
	Surb     string
	SurbKeys string
}

func loadSphinxVectors(t *testing.T) []sphinxVector {
	var vectors []sphinxVector
	decodeJSON(t, "sphinx_vectors.json", &vectors)
	if len(vectors) != 10 {
		t.Fatalf("%d Sphinx vectors, want 10", len(vectors))
	}
	return vectors
}

// expectedCommands is what hop i of a vector must parse: its own commands,
// then (at a non-terminal hop) the next-hop command naming hop i+1.
func expectedCommands(t *testing.T, v sphinxVector, i int) Commands {
	t.Helper()
	var want Commands
	for _, c := range v.Path[i].Commands {
		parsed, err := ParseCommands(unhex(t, c))
		if err != nil || len(parsed) != 1 {
			t.Fatalf("vector command %s: %v", c, err)
		}
		want = append(want, parsed[0])
	}
	return want
}

// TestSphinxVectors checks header processing at all 30 hop transitions of
// sphinx_vectors.json against Katzenpost's bytes. The payloads there are AEZ
// ciphertexts, so the last hop's payload (and a SURB reply's) is rebuilt with
// LIONESS under keys derived from the vector's own private keys, and unwrap
// and SURB decryption must then return the vector's Payload.
func TestSphinxVectors(t *testing.T) {
	f, err := New(vectorGeometry)
	if err != nil {
		t.Fatal(err)
	}
	transitions, nonTerminal := 0, 0
	for vi, v := range loadSphinxVectors(t) {
		n := len(v.Path)
		isSURB := v.Surb != ""
		payload := unhex(t, v.Payload)
		if len(v.Nodes) != n || len(v.Packets) != n+1 || v.Packets[n] != "" {
			t.Fatalf("vector %d: %d nodes, %d path hops, %d packets", vi, len(v.Nodes), n, len(v.Packets))
		}
		for i := range n {
			priv := unhex32(t, v.Nodes[i].PrivateKey)
			var pub [32]byte
			if err := x25519.ScalarBaseMult(&pub, priv); err != nil || pub != *unhex32(t, v.Path[i].PublicKey) {
				t.Fatalf("vector %d hop %d: public key does not match the private key", vi, i)
			}
		}

		var surbToken []byte // built from the vector's keys, hop n-1 first
		replyKey := bytes.Repeat([]byte{0x5a}, ReplyKeyLength)
		if isSURB {
			surb := unhex(t, v.Surb)
			if !bytes.Equal(surb[:vectorGeometry.HeaderLength()], unhex(t, v.Packets[0])[:vectorGeometry.HeaderLength()]) {
				t.Fatalf("vector %d: SURB header differs from the reply packet's", vi)
			}
			if !bytes.Equal(surb[vectorGeometry.HeaderLength():][:NodeIDLength], unhex(t, v.Path[0].ID)) {
				t.Fatalf("vector %d: SURB first hop is not the path's first node", vi)
			}
		}

		packet := unhex(t, v.Packets[0])
		if isSURB {
			// The reply a SURB holder makes, with a LIONESS reply key in
			// place of the vector's AEZ one.
			block := append(make([]byte, PayloadTagLength), payload...)
			if err := lioness.Encrypt((*[lioness.KeySize]byte)(replyKey), (*[lioness.IVSize]byte)(replyKey[lioness.KeySize:]), block); err != nil {
				t.Fatal(err)
			}
			copy(packet[vectorGeometry.HeaderLength():], block)
		}
		for i := range n {
			priv := unhex32(t, v.Nodes[i].PrivateKey)
			keys := vectorHopKeys(t, priv, packet)
			terminal := i == n-1
			if terminal && !isSURB {
				// Rebuild the last hop's payload under LIONESS.
				block := append(make([]byte, PayloadTagLength), payload...)
				if err := lioness.Encrypt(keys.lionessKey(), keys.lionessIV(), block); err != nil {
					t.Fatal(err)
				}
				copy(packet[vectorGeometry.HeaderLength():], block)
			}
			surbToken = append(keys.payloadKeyMaterial(), surbToken...)

			key, err := NewPrivateKey(X25519, priv)
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.Unwrap(key, packet)
			if err != nil {
				t.Fatalf("vector %d hop %d: %v", vi, i, err)
			}
			transitions++
			want := expectedCommands(t, v, i)
			if !terminal {
				want = append(want, NextNodeHop{ID: NodeID(unhex(t, v.Path[i+1].ID))})
			}
			checkCommands(t, vi, i, res.Commands, want)

			if !terminal {
				nonTerminal++
				next := unhex(t, v.Packets[i+1])
				h := vectorGeometry.HeaderLength()
				if !bytes.Equal(packet[:h], next[:h]) {
					t.Fatalf("vector %d hop %d: header after unwrap\n%x\nwant\n%x", vi, i, packet[:h], next[:h])
				}
				if got, _ := res.Commands.NextHop(); !bytes.Equal(got.MAC[:], next[h-MACLength:h]) {
					t.Fatalf("vector %d hop %d: next-hop MAC is not the next header's gamma", vi, i)
				}
				if res.Payload != nil {
					t.Fatalf("vector %d hop %d: forwarding hop returned a payload", vi, i)
				}
				continue
			}
			got := res.Payload
			if isSURB {
				surbToken = append(surbToken, replyKey...)
				got, err = f.DecryptSURBPayload(surbToken, res.Payload)
				if err != nil {
					t.Fatalf("vector %d: SURB decryption: %v", vi, err)
				}
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("vector %d: payload %x, want %x", vi, got, payload)
			}
		}
	}
	if transitions != 30 || nonTerminal != 20 {
		t.Fatalf("checked %d transitions (%d non-terminal), want 30 (20)", transitions, nonTerminal)
	}
}

// vectorHopKeys derives a hop's keys from its private key and the packet's
// alpha, independently of Unwrap.
func vectorHopKeys(t *testing.T, priv *[32]byte, packet []byte) *packetKeys {
	t.Helper()
	var secret [32]byte
	if err := x25519.ScalarMult(&secret, priv, (*[32]byte)(packet[versionLength:versionLength+GroupElementLength])); err != nil {
		t.Fatal(err)
	}
	var k packetKeys
	deriveKeys(&k, &secret)
	return &k
}

// checkCommands compares parsed commands with the expected ones; a
// NextNodeHop is compared by ID only (its MAC is checked against the next
// header).
func checkCommands(t *testing.T, vi, hop int, got, want Commands) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("vector %d hop %d: commands %#v, want %#v", vi, hop, got, want)
	}
	for j := range got {
		g, w := got[j], want[j]
		if gn, ok := g.(NextNodeHop); ok {
			if wn, ok := w.(NextNodeHop); !ok || gn.ID != wn.ID {
				t.Fatalf("vector %d hop %d: command %d is %#v, want %#v", vi, hop, j, g, w)
			}
			continue
		}
		if g != w {
			t.Fatalf("vector %d hop %d: command %d is %#v, want %#v", vi, hop, j, g, w)
		}
	}
}
