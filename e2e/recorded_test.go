package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/sha3"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/backchannel/backchannel/internal/endtoend/envelope"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/tools/faultnet"
)

// TestRecordedTrafficAfterX25519Falls plays the adversary this software is
// built against: a state service that records every byte on every link and
// every packet its providers store, to open them once it can break X25519.
//
// Every node of one network sits behind a recording proxy (faultnet), and
// the providers, in their test build, write down every packet they store.
// On it run the features' conversations (featuresAcrossProcesses: an
// introduction, messages both ways, conveyed messages with receipts, a
// mutual interest check, disappearing messages), and two more users whose
// test builds seal every payload in the classical envelope, as the previous
// release did. Every client's test build writes down its X25519 secrets:
// identity key, prekeys, link key, and the ephemeral ones its sessions make
// (PQXDH's, the ratchet's); the nodes' link keys and per-epoch Sphinx keys
// are in their key files. Then:
//
//   - links: every recorded connection began with a TLS ClientHello that
//     offered X25519MLKEM768 alone, answered by a ServerHello that chose
//     it; a TLS client offering only classical groups was refused (an
//     alert, no ServerHello) and counted by the node. crypto/tls does not
//     export its ephemeral secrets, so this checks the negotiation, not a
//     decryption;
//   - packets: the nodes' test builds also write down the Sphinx packets
//     they take (a hostile relay's recording); the adversary, holding the
//     X25519 secrets of every node's Sphinx keys and no ML-KEM secret,
//     opens no X-Wing header at any hop and links no packet entering a
//     node to one leaving it by their bytes (recordedpackets_test.go, whose
//     TestRecordedPacketsOfX25519Format is the control: on the X25519
//     format the same adversary opens and follows them);
//   - envelopes: the adversary, holding every X25519 secret above, opens
//     no stored payload of the post-quantum users: their envelopes need
//     ML-KEM secrets too (sealed: X-Wing; keyed: a session key from PQXDH's
//     SK, whose ML-KEM part no X25519 secret gives). The same adversary
//     opens the classical users' payloads and learns who wrote to whom: it
//     has teeth. (HPKE's own ephemeral keys stay inside crypto/hpke; the
//     recipient's secret, which the adversary holds, opens what they seal.)
//
// The test build's recording is not in a release build: the binary built
// without the "faults" tag holds none of its switches.
func TestRecordedTrafficAfterX25519Falls(t *testing.T) {
	rec := &recording{streams: map[string]map[int64]*stream{}}
	nw := generateNetwork(t, binPath, 1, map[string][]string{"testnet": append([]string{"-expire-every", "500ms"}, clientParameters...)})
	behindProxies(t, nw, func(node string) faultnet.Faults { return faultnet.Faults{Record: rec.record(node)} })
	stored := filepath.Join(nw.dir, "stored-packets")
	secrets := filepath.Join(nw.dir, "x25519-secrets")
	nw.env = map[string][]string{}
	for _, p := range nw.doc.Providers() {
		nw.env[p.Name] = []string{"BACKCHANNEL_RECORD_STORED=" + stored}
	}
	nw.clientEnv = []string{"BACKCHANNEL_RECORD_SECRETS=" + secrets}
	recordHandledEnv(nw, nw.dir, handledPacketsMax)
	t.Cleanup(nw.stopAll)
	for _, n := range nw.doc.Nodes {
		nw.start(n.Name)
	}

	t.Run("conversation", func(t *testing.T) {
		t.Run("features", func(t *testing.T) { featuresAcrossProcesses(t, nw) })
		t.Run("classical", func(t *testing.T) {
			t.Parallel()
			classicalConversation(t, nw)
		})
	})
	if t.Failed() {
		return
	}
	t.Run("links", func(t *testing.T) { checkRecordedHandshakes(t, nw, rec) })
	t.Run("envelopes", func(t *testing.T) { checkStoredPayloads(t, nw, stored, secrets) })
	t.Run("packets", func(t *testing.T) {
		nw.stopAll()
		seen := checkRecordedPackets(t, nw, nw.dir)
		if seen.recorded < 100 || seen.opened != 0 || seen.linked != 0 || seen.byteLinks != 0 {
			t.Fatalf("of %d recorded X-Wing packets the adversary opened %d headers, followed %d and linked %d pairs by their bytes; want at least 100 recorded, none of the rest",
				seen.recorded, seen.opened, seen.linked, seen.byteLinks)
		}
	})
	t.Run("release build", checkReleaseBuild)
}

// classicalConversation: two users whose test builds seal every payload in
// the classical envelope (BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES) write to
// each other.
func classicalConversation(t *testing.T, nw *network) {
	var users []*clientProc
	for i, name := range []string{"old-alice", "old-bob"} {
		c := nw.signUp(t, name, []string{"provider-a", "provider-b"}[i], nw.clientDir(name))
		c.env = append(c.env, "BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES=1")
		c.start()
		t.Cleanup(c.stop)
		users = append(users, c)
	}
	befriend(users[0], users[1])
	exchange(t, "classical", 3, users[0], users[1])
}

// recording keeps what the proxies saw: per node, per connection, the
// bytes each way.
type recording struct {
	mu      sync.Mutex
	streams map[string]map[int64]*stream // guarded by mu
}

type stream struct {
	fromDialer, toDialer []byte
}

// record returns the recorder of one node's proxy.
func (r *recording) record(node string) func(faultnet.Chunk) {
	return func(c faultnet.Chunk) {
		r.mu.Lock()
		defer r.mu.Unlock()
		conns := r.streams[node]
		if conns == nil {
			conns = map[int64]*stream{}
			r.streams[node] = conns
		}
		s := conns[c.Conn]
		if s == nil {
			s = &stream{}
			conns[c.Conn] = s
		}
		// Only the start of each stream is parsed: keep 16 KiB.
		if c.FromDialer && len(s.fromDialer) < 16<<10 {
			s.fromDialer = append(s.fromDialer, c.Data...)
		} else if !c.FromDialer && len(s.toDialer) < 16<<10 {
			s.toDialer = append(s.toDialer, c.Data...)
		}
	}
}

// checkRecordedHandshakes parses the first record each way of every
// recorded connection, and probes one node with a classical-only TLS
// client.
func checkRecordedHandshakes(t *testing.T, nw *network, rec *recording) {
	// The probe goes through the proxy, so it is recorded too.
	probe, err := net.Dial("tcp", nw.node("provider-a").Address)
	if err != nil {
		t.Fatal(err)
	}
	classical := tls.Client(probe, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}})
	if err := classical.Handshake(); err == nil {
		t.Fatal("a TLS client offering X25519 alone made a link")
	}
	probe.Close()
	if got := nw.counter("backchannel_link_errors_total", "classical_refused", "provider-a"); got < 1 {
		t.Fatalf("provider-a counted %v refused classical links", got)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var pq, refused int
	for node, conns := range rec.streams {
		for n, s := range conns {
			if len(s.fromDialer) == 0 {
				continue // a connection that sent nothing (a dial abandoned)
			}
			offered, err := clientHelloGroups(s.fromDialer)
			if err != nil {
				t.Fatalf("%s, connection %d: the dialer's first bytes: %v", node, n, err)
			}
			chosen, err := serverHelloGroup(s.toDialer)
			switch {
			case err == nil && chosen == tls.X25519MLKEM768 && slices.Equal(offered, []tls.CurveID{tls.X25519MLKEM768}):
				pq++
			case !slices.Contains(offered, tls.X25519MLKEM768) && err != nil:
				refused++ // the classical probe: answered with an alert
			case len(s.toDialer) == 0:
				// Nothing came back before the network stopped.
			default:
				t.Fatalf("%s, connection %d: offered %v, chose %v (%v)", node, n, offered, chosen, err)
			}
		}
	}
	t.Logf("recorded handshakes: %d negotiated X25519MLKEM768, %d classical-only refused", pq, refused)
	if pq < 10 || refused != 1 {
		t.Fatalf("%d post-quantum handshakes and %d refused; want many and the one probe", pq, refused)
	}
}

// handshakeMessage returns the body of the first handshake message of a
// stream of TLS records, if the first record holds it whole and is of the
// given type.
func handshakeMessage(b []byte, msgType uint8) (cryptobyte.String, error) {
	s := cryptobyte.String(b)
	var contentType uint8
	var version uint16
	var record cryptobyte.String
	if !s.ReadUint8(&contentType) || !s.ReadUint16(&version) || !s.ReadUint16LengthPrefixed(&record) {
		return nil, fmt.Errorf("not a whole TLS record (%d bytes)", len(b))
	}
	if contentType != 22 {
		return nil, fmt.Errorf("a TLS record of type %d, not a handshake", contentType)
	}
	var typ uint8
	var body cryptobyte.String
	if !record.ReadUint8(&typ) || !record.ReadUint24LengthPrefixed(&body) || typ != msgType {
		return nil, fmt.Errorf("handshake message of type %d, want %d", typ, msgType)
	}
	return body, nil
}

// extensions walks a hello's extensions.
func extensions(s cryptobyte.String, each func(typ uint16, data cryptobyte.String) error) error {
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return fmt.Errorf("no extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return fmt.Errorf("a truncated extension")
		}
		if err := each(typ, data); err != nil {
			return err
		}
	}
	return nil
}

const (
	extSupportedGroups = 10
	extKeyShare        = 51
)

// clientHelloGroups returns the groups a ClientHello offers (RFC 8446
// §4.1.2, §4.2.7), checking that it sends a key share of each.
func clientHelloGroups(b []byte) ([]tls.CurveID, error) {
	s, err := handshakeMessage(b, 1)
	if err != nil {
		return nil, err
	}
	var random, session, suites, compression cryptobyte.String
	var version uint16
	if !s.ReadUint16(&version) || !s.ReadBytes((*[]byte)(&random), 32) || !s.ReadUint8LengthPrefixed(&session) ||
		!s.ReadUint16LengthPrefixed(&suites) || !s.ReadUint8LengthPrefixed(&compression) {
		return nil, fmt.Errorf("a truncated ClientHello")
	}
	var groups, shares []tls.CurveID
	err = extensions(s, func(typ uint16, data cryptobyte.String) error {
		var list cryptobyte.String
		switch typ {
		case extSupportedGroups:
			if !data.ReadUint16LengthPrefixed(&list) {
				return fmt.Errorf("bad supported_groups")
			}
			for !list.Empty() {
				var g uint16
				list.ReadUint16(&g)
				groups = append(groups, tls.CurveID(g))
			}
		case extKeyShare:
			if !data.ReadUint16LengthPrefixed(&list) {
				return fmt.Errorf("bad key_share")
			}
			for !list.Empty() {
				var g uint16
				var key cryptobyte.String
				if !list.ReadUint16(&g) || !list.ReadUint16LengthPrefixed(&key) {
					return fmt.Errorf("bad key_share entry")
				}
				shares = append(shares, tls.CurveID(g))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fmt.Sprint(groups) != fmt.Sprint(shares) {
		return nil, fmt.Errorf("groups %v offered, key shares sent for %v", groups, shares)
	}
	return groups, nil
}

// serverHelloGroup returns the group of a ServerHello's key share.
func serverHelloGroup(b []byte) (tls.CurveID, error) {
	s, err := handshakeMessage(b, 2)
	if err != nil {
		return 0, err
	}
	var random, session cryptobyte.String
	var version, suite uint16
	var compression uint8
	if !s.ReadUint16(&version) || !s.ReadBytes((*[]byte)(&random), 32) || !s.ReadUint8LengthPrefixed(&session) ||
		!s.ReadUint16(&suite) || !s.ReadUint8(&compression) {
		return 0, fmt.Errorf("a truncated ServerHello")
	}
	var group tls.CurveID
	err = extensions(s, func(typ uint16, data cryptobyte.String) error {
		if typ == extKeyShare {
			var g uint16
			if !data.ReadUint16(&g) {
				return fmt.Errorf("bad key_share")
			}
			group = tls.CurveID(g)
		}
		return nil
	})
	if err == nil && group == 0 {
		err = fmt.Errorf("no key_share")
	}
	return group, err
}

// sphinxX25519Secrets returns, as "sphinx <hex>" lines, the X25519 secret
// of every Sphinx key a node holds: an X25519 key's scalar, and the X25519
// half of an X-Wing key (bytes 64 to 96 of SHAKE256 of its seed, as X-Wing's
// key derivation makes it).
func sphinxX25519Secrets(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	for _, f := range files {
		kind := keyfile.Sphinx
		if strings.Contains(filepath.Base(f), "xwing") {
			kind = keyfile.SphinxXWing
		}
		k, err := keyfile.ReadX25519(f, kind)
		if err != nil {
			t.Fatal(err)
		}
		secret := k[:]
		if kind == keyfile.SphinxXWing {
			secret = sha3.SumSHAKE256(k[:], 96)[64:]
		}
		lines = append(lines, "sphinx "+hex.EncodeToString(secret))
	}
	return lines
}

// checkStoredPayloads gives the adversary every recorded X25519 secret and
// every stored packet: it opens the classical users' payloads and none of
// the others'.
func checkStoredPayloads(t *testing.T, nw *network, storedPath, secretsPath string) {
	var keys []*ecdh.PrivateKey
	lines := readLines(t, secretsPath)
	for _, n := range nw.doc.Nodes {
		lines = append(lines, sphinxX25519Secrets(t, filepath.Join(nw.dir, n.Name, "sphinx-keys"))...)
		k, err := keyfile.ReadX25519(filepath.Join(nw.dir, n.Name, "link.key"), keyfile.Link)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "node-link "+hex.EncodeToString(k[:]))
	}
	kinds := map[string]int{}
	for _, line := range lines {
		kind, _, _ := strings.Cut(line, " ")
		kinds[kind]++
	}
	t.Logf("the adversary holds %d X25519 secrets: %v", len(lines), kinds)
	if kinds["ephemeral"] == 0 || kinds["sphinx"] == 0 {
		t.Fatalf("the recorded secrets lack a kind: %v", kinds)
	}
	for _, line := range lines {
		_, h, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("secret %q: %v", line, err)
		}
		k, err := ecdh.X25519().NewPrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	var forward, opened, classical int
	senders := map[[envelope.KeySize]byte]bool{}
	for _, line := range readLines(t, storedPath) {
		_, h, _ := strings.Cut(line, " ")
		packet, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		var d wire.Delivery
		if err := d.UnmarshalBinary(packet); err != nil {
			t.Fatal(err)
		}
		if d.SURBID != nil {
			continue // a SURB reply: a contact of the previous release acknowledging
		}
		forward++
		if d.Payload[0] == envelope.VersionClassical {
			classical++
		}
		for _, k := range keys {
			// What X25519 secrets open: the classical envelope (HPKE
			// with DHKEM(X25519)). The sealed form needs ML-KEM's
			// shared secret besides X25519's, the keyed form a key from
			// PQXDH's SK, which needs ML-KEM's too.
			if c, err := envelope.Open(&envelope.Keys{Identity: k}, d.Payload); err == nil {
				opened++
				if c.Kind == envelope.KindSession || c.Kind == envelope.KindMessage {
					senders[c.Sender] = true
				}
				break
			}
		}
	}
	t.Logf("stored forward payloads: %d, of which %d classical; the adversary opened %d, naming %d senders", forward, classical, opened, len(senders))
	if forward < 100 || classical == 0 {
		t.Fatalf("%d forward payloads recorded, %d classical: the conversation did not happen", forward, classical)
	}
	if opened != classical {
		t.Fatalf("the adversary opened %d payloads; exactly the %d classical ones should open", opened, classical)
	}
	if len(senders) != 2 {
		t.Fatalf("the classical payloads name %d senders, want the two classical users", len(senders))
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// checkReleaseBuild: a build without the "faults" tag, as released, holds
// none of the recording switches, which the test build does.
func checkReleaseBuild(t *testing.T) {
	release := filepath.Join(t.TempDir(), "backchannel")
	if out, err := exec.Command("go", "build", "-o", release, "../cmd/backchannel").CombinedOutput(); err != nil {
		t.Fatalf("building the release binary: %v\n%s", err, out)
	}
	switches := []string{"BACKCHANNEL_RECORD_SECRETS", "BACKCHANNEL_RECORD_STORED", "BACKCHANNEL_RECORD_HANDLED", "BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES"}
	for bin, want := range map[string]bool{release: false, binPath: true} {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range switches {
			if bytes.Contains(b, []byte(s)) != want {
				t.Fatalf("%s holds %s: %v, want %v", bin, s, !want, want)
			}
		}
	}
}
