package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// The packets a hostile relay records (test builds' BACKCHANNEL_RECORD_HANDLED:
// what each node takes from its links, before unwrapping), and what an
// adversary who breaks X25519 later does with them. It holds every node's
// Sphinx keys' X25519 secrets — the scalar of an X25519 key, the X25519
// half of an X-Wing key — and no ML-KEM secret, and it:
//
//   - opens a packet's header at the node that recorded it if the hop's
//     MAC verifies under keys derived from what it can compute: in the
//     X25519 format the shared secret X25519(node key, alpha); in the
//     X-Wing format its best guess at the hop's secret, X-Wing's combiner
//     over the X25519 secret it can compute with an all-zero ML-KEM secret
//     in place of the one it cannot (and, for good measure, the X25519
//     secret alone);
//   - links packets by their bytes: a packet taken by one node and a packet
//     taken by another that share an aligned 32-byte window (past the
//     version bytes); and, where it opened a header, by unwrapping the
//     packet with the node's key and finding the result among what the next
//     node took.
//
// Against the X25519 format it opens every header and follows packets from
// node to node (the control); against X-Wing it opens none and links none.

// handledPacketsMax is how many packets each node records: enough for the
// checks, few enough to keep the files small (a line is twice a packet).
const handledPacketsMax = 400

// recordHandledEnv gives every node of nw a recording of the packets it
// takes, in dir/handled-<node>.
func recordHandledEnv(nw *network, dir string, max int) {
	if nw.env == nil {
		nw.env = map[string][]string{}
	}
	for _, n := range nw.doc.Nodes {
		nw.env[n.Name] = append(nw.env[n.Name], "BACKCHANNEL_RECORD_HANDLED="+filepath.Join(dir, "handled-"+n.Name),
			"BACKCHANNEL_RECORD_HANDLED_MAX="+strconv.Itoa(max))
	}
}

// packetsSeen are what the adversary's relays recorded and what it learnt.
type packetsSeen struct {
	recorded, opened, forwardable, linked, byteLinks int
}

// checkRecordedPackets plays the adversary above on the packets the nodes of
// nw recorded in dir (the nodes must have stopped).
func checkRecordedPackets(t *testing.T, nw *network, dir string) packetsSeen {
	t.Helper()
	g := nw.doc.Parameters.Geometry
	format, err := sphinx.New(g)
	if err != nil {
		t.Fatal(err)
	}
	handled := map[string][][]byte{}
	for _, n := range nw.doc.Nodes {
		handled[n.Name] = readPackets(t, filepath.Join(dir, "handled-"+n.Name))
	}
	var seen packetsSeen
	seen.byteLinks = sharedWindows(handled)
	nextOf := nextHops(nw.doc)
	for _, n := range nw.doc.Nodes {
		keyDir := filepath.Join(nw.dir, n.Name, "sphinx-keys")
		secret := nodeX25519Secret(t, keyDir, g.Scheme, nw.doc.Epoch)
		for _, p := range handled[n.Name] {
			seen.recorded++
			if len(p) != g.PacketLength() || !opensHeader(g, n, &secret, p) {
				continue
			}
			seen.opened++
			// Only the X25519 format gets here: its secret is the key.
			key, err := keyfile.ReadSphinx(keyDir, g.Scheme, nw.doc.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			work := bytes.Clone(p)
			res, err := format.Unwrap(key, work)
			if err != nil {
				continue
			}
			next, ok := res.Commands.NextHop()
			if !ok {
				continue
			}
			seen.forwardable++
			for _, q := range handled[nextOf[next.ID]] {
				if bytes.Equal(q, work) {
					seen.linked++
					break
				}
			}
		}
	}
	t.Logf("%v: %d packets recorded at %d nodes; headers opened with X25519 secrets alone: %d; followed to the next node by unwrapping: %d of %d; linked by shared bytes: %d",
		g.Scheme, seen.recorded, len(nw.doc.Nodes), seen.opened, seen.linked, seen.forwardable, seen.byteLinks)
	return seen
}

// nextHops maps node IDs to names.
func nextHops(doc *directory.Document) map[sphinx.NodeID]string {
	m := map[sphinx.NodeID]string{}
	for _, n := range doc.Nodes {
		m[n.ID()] = n.Name
	}
	return m
}

func readPackets(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p, err := hex.DecodeString(sc.Text())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// nodeX25519Secret is the X25519 secret of a node's Sphinx key for the
// epoch: the key itself (X25519), or the X25519 half of an X-Wing key
// (SHAKE256 of the seed, bytes 64 to 96).
func nodeX25519Secret(t *testing.T, dir string, s sphinx.Scheme, epoch uint64) [32]byte {
	t.Helper()
	name, kind := keyfile.SphinxFile(s, epoch)
	k, err := keyfile.ReadX25519(filepath.Join(dir, name), kind)
	if err != nil {
		t.Fatal(err)
	}
	if s == sphinx.XWing {
		return [32]byte(sha3.SumSHAKE256(k[:], 96)[64:])
	}
	return k
}

// opensHeader reports whether the adversary's keys verify the header MAC of
// p at node n: Katzenpost's KDF (HKDF-Expand, SHA-256, its info string; the
// first 32 bytes are the MAC key) over each secret it can make.
func opensHeader(g sphinx.Geometry, n directory.Node, secret *[32]byte, p []byte) bool {
	h := g.HeaderLength()
	var candidates [][]byte
	priv, err := ecdh.X25519().NewPrivateKey(secret[:])
	if err != nil {
		return false
	}
	if g.Scheme == sphinx.X25519 {
		alpha, err := ecdh.X25519().NewPublicKey(p[2:34])
		if err != nil {
			return false
		}
		ss, err := priv.ECDH(alpha)
		if err != nil {
			return false
		}
		candidates = append(candidates, ss)
	} else {
		ct := p[2 : 2+1120]
		ctX, pkX := ct[1088:], n.SphinxKey.Bytes()[1184:]
		ephemeral, err := ecdh.X25519().NewPublicKey(ctX)
		if err != nil {
			return false
		}
		ssX, err := priv.ECDH(ephemeral)
		if err != nil {
			return false
		}
		combiner := sha3.New256()
		for _, part := range [][]byte{make([]byte, 32), ssX, ctX, pkX, []byte(`\.//^\`)} {
			combiner.Write(part)
		}
		candidates = append(candidates, combiner.Sum(nil), ssX)
	}
	for _, ss := range candidates {
		macKey, err := hkdf.Expand(sha256.New, ss, "katzenpost-kdf-v0-hkdf-sha256", 32)
		if err != nil {
			return false
		}
		m := hmac.New(sha256.New, macKey)
		m.Write(p[:h-32])
		if hmac.Equal(m.Sum(nil), p[h-32:h]) {
			return true
		}
	}
	return false
}

// sharedWindows counts pairs of packets taken by different nodes that share
// an aligned 32-byte window past the version bytes: bytes that would let a
// recorder link a packet entering a node to one leaving it without any key.
func sharedWindows(handled map[string][][]byte) int {
	type where struct {
		node   string
		packet []byte
		at     int
	}
	windows := map[uint64][]where{}
	for node, packets := range handled {
		for _, p := range packets {
			for at := 2; at+32 <= len(p); at += 32 {
				k := binary.LittleEndian.Uint64(p[at:])
				windows[k] = append(windows[k], where{node, p, at})
			}
		}
	}
	links := 0
	for _, ws := range windows {
		for i := range ws {
			for j := i + 1; j < len(ws); j++ {
				a, b := ws[i], ws[j]
				if a.node != b.node && bytes.Equal(a.packet[a.at:a.at+32], b.packet[b.at:b.at+32]) && !isZero32(a.packet[a.at:a.at+32]) {
					links++
				}
			}
		}
	}
	return links
}

func isZero32(b []byte) bool { return bytes.Equal(b, make([]byte, 32)) }

// TestRecordedPacketsOfX25519Format is the control of the packet checks of
// TestRecordedTrafficAfterX25519Falls: on a network of the X25519 format,
// where two users write to each other, the same adversary opens the header
// of every packet a node recorded with that node's key, and follows the
// packets from node to node by unwrapping them. (Its counterpart on the
// X-Wing format, in that test, opens and follows none.)
func TestRecordedPacketsOfX25519Format(t *testing.T) {
	t.Parallel() // it waits on its clients more than it computes
	nw := generateNetwork(t, binPath, 1, map[string][]string{"testnet": {"-packet-format", "x25519", "-poll-interval", "10ms", "-send-rate", "10", "-loop-rate", "1", "-drop-rate", "1"}})
	recordHandledEnv(nw, nw.dir, 2000)
	t.Cleanup(nw.stopAll)
	for _, n := range nw.doc.Nodes {
		nw.start(n.Name)
	}
	alice, bob := nw.newClient(t, "alice", "provider-a"), nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	exchange(t, "x25519", 2, alice, bob)
	alice.stop()
	bob.stop()
	nw.stopAll()
	seen := checkRecordedPackets(t, nw, nw.dir)
	if seen.recorded < 50 || seen.opened != seen.recorded {
		t.Fatalf("the adversary opened %d of %d recorded X25519 headers, want all (and at least 50 recorded)", seen.opened, seen.recorded)
	}
	if seen.forwardable < 20 || float64(seen.linked) < 0.8*float64(seen.forwardable) {
		t.Fatalf("the adversary followed %d of %d packets to the next node, want at least 80%%", seen.linked, seen.forwardable)
	}
}
