package sphinx

import (
	"bytes"
	"crypto/mlkem"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/lioness"
)

// The KEM Sphinx vectors in testdata/kemsphinx come from running
// Katzenpost's own code (their README.md gives the origin, the license and
// the construction byte by byte): X-Wing and ML-KEM-768, two geometries
// (5 hops, 103 and 2,000 bytes of payload), forward and SURB cases of 1 to 5
// hops. Their payloads are AEZ ciphertexts; as for the X25519 vectors, the
// header path is checked byte for byte and the payload rebuilt with LIONESS
// from the recorded per-hop secrets.

type kemVectorFile struct {
	Format      string          `json:"format"`
	Description string          `json:"description"`
	Origin      json.RawMessage `json:"origin"`
	KEM         struct {
		Name             string `json:"name"`
		PublicKeySize    int    `json:"public_key_size"`
		PrivateKeySize   int    `json:"private_key_size"`
		CiphertextSize   int    `json:"ciphertext_size"`
		SharedKeySize    int    `json:"shared_key_size"`
		SeedSize         int    `json:"seed_size"`
		PrivateKeyLayout string `json:"private_key_layout"`
	} `json:"kem"`
	Generation json.RawMessage `json:"generation"`
	Cases      []kemVectorCase `json:"cases"`
}

type kemVectorCase struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	NrHops       int    `json:"nr_hops"`
	GeometryName string `json:"geometry_name"`
	Geometry     struct {
		PacketLength                int
		NrHops                      int
		HeaderLength                int
		RoutingInfoLength           int
		PerHopRoutingInfoLength     int
		SURBLength                  int
		SphinxPlaintextHeaderLength int
		PayloadTagLength            int
		ForwardPayloadLength        int
		UserForwardPayloadLength    int
		NextNodeHopLength           int
		SPRPKeyMaterialLength       int
		NIKEName                    string
		KEMName                     string
	} `json:"geometry"`
	Layout map[string]int `json:"layout"`
	Nodes  []struct {
		ID         string `json:"id"`
		PrivateKey string `json:"private_key"`
		PublicKey  string `json:"public_key"`
	} `json:"nodes"`
	Path []struct {
		ID       string   `json:"id"`
		Commands []string `json:"commands"`
	} `json:"path"`
	Payload              string         `json:"payload"`
	RoutingInfoFiller    string         `json:"routing_info_filler"`
	SURB                 string         `json:"surb"`
	SURBKeys             string         `json:"surb_keys"`
	Packet               string         `json:"packet"`
	Hops                 []kemVectorHop `json:"hops"`
	SURBDecryptedPayload string         `json:"surb_decrypted_payload"`
}

type kemVectorHop struct {
	Hop          int    `json:"hop"`
	SharedSecret string `json:"shared_secret"`
	Keys         struct {
		HeaderMAC          string `json:"header_mac"`
		HeaderEncryption   string `json:"header_encryption"`
		HeaderEncryptionIV string `json:"header_encryption_iv"`
		PayloadEncryption  string `json:"payload_encryption"`
	} `json:"keys"`
	ReplayTag     string   `json:"replay_tag"`
	CommandsBlock string   `json:"commands_block"`
	Commands      []string `json:"commands"`
	NextPacket    string   `json:"next_packet"`
	Payload       string   `json:"payload"`
}

// kemVectorDecapsulator computes one hop's secret apart from Unwrap:
// X-Wing from the node's seed, ML-KEM-768 with crypto/mlkem.
type kemVectorDecapsulator func(t *testing.T, privateKey, publicKey, ciphertext []byte) [32]byte

// TestKEMSphinxVectors checks every hop of every case of both files: the
// node keys, the geometry, each hop's shared secret and keys, the replay tag,
// the commands (and their 82-byte block), the next header byte for byte, the
// payload rebuilt with LIONESS, and header creation from the recorded
// ciphertexts, secrets and filler.
func TestKEMSphinxVectors(t *testing.T) {
	for _, tc := range []struct {
		file   string
		scheme Scheme
		kem    string
		decap  kemVectorDecapsulator
	}{
		{"kemsphinx_xwing_vectors.json", XWing, "XWING", xwingVectorSecret},
		{"kemsphinx_mlkem768_vectors.json", mlkem768Vectors, "MLKEM768", mlkemVectorSecret},
	} {
		t.Run(tc.kem, func(t *testing.T) {
			var file kemVectorFile
			decodeJSON(t, filepath.Join("kemsphinx", tc.file), &file)
			if file.Format != "katzenpost-kemsphinx-vectors/1" || file.KEM.Name != tc.kem || len(file.Cases) != 24 {
				t.Fatalf("%s: format %q, KEM %q, %d cases", tc.file, file.Format, file.KEM.Name, len(file.Cases))
			}
			if file.KEM.CiphertextSize != tc.scheme.elementLength() {
				t.Fatalf("%s: ciphertexts of %d bytes, the scheme has %d", tc.file, file.KEM.CiphertextSize, tc.scheme.elementLength())
			}
			transitions := 0
			for _, c := range file.Cases {
				transitions += checkKEMVectorCase(t, tc.scheme, tc.decap, c)
			}
			if transitions != 80 {
				t.Fatalf("checked %d hop transitions, want 80", transitions)
			}
		})
	}
}

func checkKEMVectorCase(t *testing.T, s Scheme, decap kemVectorDecapsulator, c kemVectorCase) int {
	t.Helper()
	n := c.NrHops
	payload := unhex(t, c.Payload)
	g := Geometry{MaxHops: 5, UserPayloadLength: len(payload), Scheme: s}
	h := g.HeaderLength()
	if c.Geometry.HeaderLength != h || c.Geometry.RoutingInfoLength != g.RoutingInfoLength() ||
		c.Geometry.PerHopRoutingInfoLength != g.PerHopRoutingInfoLength() || c.Geometry.PacketLength != g.PacketLength() ||
		c.Layout["commands_block_length"] != CommandsLength || c.Layout["mac_offset"] != g.macOffset() {
		t.Fatalf("%s: geometry %+v, ours %v", c.Name, c.Geometry, g)
	}
	if len(c.Nodes) != n || len(c.Path) != n || len(c.Hops) != n {
		t.Fatalf("%s: %d nodes, %d path hops, %d hop results for %d hops", c.Name, len(c.Nodes), len(c.Path), len(c.Hops), n)
	}
	// The Format is made directly: the ML-KEM-768 scheme exists only for
	// these vectors, and New refuses it.
	f := &Format{geometry: g}
	isSURB := c.Kind == "surb"

	// Creation: the header from the recorded ciphertexts, secrets and
	// filler must be the vector's.
	path := make([]PathHop, n)
	elements := make([]byte, 0, n*s.elementLength())
	keys := make([]packetKeys, n)
	input := unhex(t, c.Packet)
	for i := range n {
		copy(path[i].ID[:], unhex(t, c.Path[i].ID))
		for _, cmd := range c.Path[i].Commands {
			parsed, err := ParseCommands(unhex(t, cmd))
			if err != nil || len(parsed) != 1 {
				t.Fatalf("%s: command %s: %v", c.Name, cmd, err)
			}
			path[i].Commands = append(path[i].Commands, parsed[0])
		}
		elements = append(elements, input[versionLength:versionLength+s.elementLength()]...)
		deriveKeys(&keys[i], unhex32(t, c.Hops[i].SharedSecret))
		if i < n-1 {
			input = unhex(t, c.Hops[i].NextPacket)
		}
	}
	if err := checkPath(g, withDummyKeys(s, path), isSURB); err != nil {
		t.Fatalf("%s: the vector's path: %v", c.Name, err)
	}
	header := make([]byte, h)
	copy(header[h-MACLength-len(unhex(t, c.RoutingInfoFiller)):], unhex(t, c.RoutingInfoFiller))
	f.writeHeader(header, path, elements, keys)
	wantHeader := unhex(t, c.Packet)[:h]
	if isSURB {
		surb := unhex(t, c.SURB)
		wantHeader = surb[:h]
		if !bytes.Equal(surb[h:h+NodeIDLength], path[0].ID[:]) {
			t.Fatalf("%s: the SURB's first hop is not the path's", c.Name)
		}
	}
	if !bytes.Equal(header, wantHeader) {
		t.Fatalf("%s: header made from the recorded ciphertexts and filler differs from Katzenpost's", c.Name)
	}

	// The payload, rebuilt with LIONESS: the SURB holder's reply under a
	// reply key of our own, or the sender's layers for every hop.
	packet := unhex(t, c.Packet)
	block := append(make([]byte, PayloadTagLength), payload...)
	replyKey := bytes.Repeat([]byte{0x5a}, ReplyKeyLength)
	var token []byte
	if isSURB {
		lionessEncrypt(t, replyKey, block)
		for i := n - 1; i >= 0; i-- {
			token = append(token, keys[i].payloadKeyMaterial()...)
		}
		token = append(token, replyKey...)
	} else {
		for i := n - 1; i >= 0; i-- {
			lionessEncrypt(t, keys[i][lionessKeyOffset:packetKeysLength], block)
		}
	}
	copy(packet[h:], block)

	for i := range n {
		hop := c.Hops[i]
		element := packet[versionLength : versionLength+s.elementLength()]
		secret := decap(t, unhex(t, c.Nodes[i].PrivateKey), unhex(t, c.Nodes[i].PublicKey), element)
		if !bytes.Equal(secret[:], unhex(t, hop.SharedSecret)) {
			t.Fatalf("%s hop %d: shared secret %x, want %s", c.Name, i, secret, hop.SharedSecret)
		}
		var k packetKeys
		deriveKeys(&k, &secret)
		katzenpost := unhex(t, hop.Keys.HeaderMAC+hop.Keys.HeaderEncryption+hop.Keys.HeaderEncryptionIV+hop.Keys.PayloadEncryption)
		if !bytes.Equal(k[:aezKeyOffset+48], katzenpost) {
			t.Fatalf("%s hop %d: derived keys differ from Katzenpost's", c.Name, i)
		}
		routing := bytes.Clone(packet[versionLength+s.elementLength() : versionLength+s.elementLength()+CommandsLength])
		k.headerKeystreamXOR(routing, nil)
		if !bytes.Equal(routing, unhex(t, hop.CommandsBlock)) {
			t.Fatalf("%s hop %d: commands block %x, want %s", c.Name, i, routing, hop.CommandsBlock)
		}

		var res Unwrapped
		var err error
		if s == XWing {
			var key *PrivateKey
			key, err = xwingVectorKey(t, unhex(t, c.Nodes[i].PrivateKey))
			if err == nil {
				res, err = f.Unwrap(key, packet)
			}
		} else if err = f.checkFrame(packet); err == nil {
			res, err = f.unwrapWithSecret(&unwrapScratch{secret: secret}, packet)
		}
		if err != nil {
			t.Fatalf("%s hop %d: %v", c.Name, i, err)
		}
		if !bytes.Equal(res.ReplayTag[:], unhex(t, hop.ReplayTag)) {
			t.Fatalf("%s hop %d: replay tag %x, want %s", c.Name, i, res.ReplayTag, hop.ReplayTag)
		}
		if len(res.Commands) != len(hop.Commands) {
			t.Fatalf("%s hop %d: commands %#v, want %v", c.Name, i, res.Commands, hop.Commands)
		}
		for j, cmd := range hop.Commands {
			if got := AppendCommands(nil, res.Commands[j:j+1]); !bytes.Equal(got, unhex(t, cmd)) {
				t.Fatalf("%s hop %d: command %d is %x, want %s", c.Name, i, j, got, cmd)
			}
		}
		if i < n-1 {
			if !bytes.Equal(packet[:h], unhex(t, hop.NextPacket)[:h]) {
				t.Fatalf("%s hop %d: next header differs from Katzenpost's", c.Name, i)
			}
			continue
		}
		got := res.Payload
		if isSURB {
			if got, err = f.DecryptSURBPayload(token, res.Payload); err != nil {
				t.Fatalf("%s: SURB decryption: %v", c.Name, err)
			}
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%s: delivered payload %x, want %x", c.Name, got, payload)
		}
	}
	return n
}

// withDummyKeys gives a copy of path placeholder keys of scheme s, so that
// checkPath looks at the vector's commands only.
func withDummyKeys(s Scheme, path []PathHop) []PathHop {
	withKeys := make([]PathHop, len(path))
	for i := range path {
		withKeys[i] = path[i]
		withKeys[i].PublicKey = &PublicKey{scheme: s}
	}
	return withKeys
}

func lionessEncrypt(t *testing.T, keyAndIV, block []byte) {
	t.Helper()
	if err := lioness.Encrypt((*[lioness.KeySize]byte)(keyAndIV), (*[lioness.IVSize]byte)(keyAndIV[lioness.KeySize:]), block); err != nil {
		t.Fatal(err)
	}
}

// xwingVectorKey reads hpqc's 1,248-byte X-Wing private key, the public key
// then the seed: the key is made from the seed, and a public-key prefix that
// differs from the seed's is refused.
func xwingVectorKey(t *testing.T, encoded []byte) (*PrivateKey, error) {
	t.Helper()
	if len(encoded) != XWing.PublicKeyLength()+SecretLength {
		t.Fatalf("X-Wing private key of %d bytes, want %d", len(encoded), XWing.PublicKeyLength()+SecretLength)
	}
	key, err := NewPrivateKey(XWing, (*[SecretLength]byte)(encoded[XWing.PublicKeyLength():]))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(key.Public().Bytes(), encoded[:XWing.PublicKeyLength()]) {
		t.Fatal("the X-Wing private key's public prefix is not the public key of its seed")
	}
	return key, nil
}

func xwingVectorSecret(t *testing.T, privateKey, publicKey, ciphertext []byte) [32]byte {
	t.Helper()
	key, err := xwingVectorKey(t, privateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key.Public().Bytes(), publicKey) {
		t.Fatal("the X-Wing public key is not the seed's")
	}
	var secret [32]byte
	if err := decapsulate(&secret, key, ciphertext); err != nil {
		t.Fatal(err)
	}
	return secret
}

// mlkemVectorSecret decapsulates with crypto/mlkem, from hpqc's 1,248-byte
// ML-KEM-768 private key: the encapsulation key, then d ‖ z.
func mlkemVectorSecret(t *testing.T, privateKey, publicKey, ciphertext []byte) [32]byte {
	t.Helper()
	const ekLength = mlkem.EncapsulationKeySize768
	if len(privateKey) != ekLength+mlkem.SeedSize || !bytes.Equal(privateKey[:ekLength], publicKey) {
		t.Fatalf("ML-KEM-768 private key of %d bytes, or its prefix is not the public key", len(privateKey))
	}
	dk, err := mlkem.NewDecapsulationKey768(privateKey[ekLength:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.EncapsulationKey().Bytes(), publicKey) {
		t.Fatal("the ML-KEM-768 public key is not the seed's")
	}
	secret, err := dk.Decapsulate(ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(secret)
}
