package sphinx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// The seed corpora are committed under testdata/fuzz/<target>/ (made from
// the Katzenpost vectors); each target also adds seeds in code.

// fuzzKey is the private key of the first hop of the 5-hop forward vector of
// scheme s (the X25519 vectors, or the X-Wing KEM vectors' 103-byte
// geometry); the raw-packet seeds are packets for it.
func fuzzKey(t testing.TB, s Scheme) *PrivateKey {
	secret := unhex32(t, "71352c290bafa46ce1735548782343a8d826bb491bb98a2d72732af9e0dcacc4")
	if s == XWing {
		secret = unhex32(t, "17c8921ccb4de618767060a27cd9f648e546512c939458c61dbdcfa4670d64c9")
	}
	key, err := NewPrivateKey(s, secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// checkCorpus fails if a target's committed seed corpus is missing, so that a
// moved directory cannot silently leave a fuzz target with no seeds.
func checkCorpus(f *testing.F, name string) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
	if err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus for %s: %v", name, err)
	}
}

// FuzzParseCommands checks that a parsed encoding is exactly the commands'
// encoding followed by zeros, and that every error is an ErrCommand.
func FuzzParseCommands(f *testing.F) {
	checkCorpus(f, "FuzzParseCommands")
	f.Add([]byte{})
	f.Add(append([]byte{0x80, 0, 0, 0, 1, 0x01}, make([]byte, 76)...))
	f.Add(append([]byte{0x02}, make([]byte, 49)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, err := ParseCommands(b)
		if err != nil {
			if !errors.Is(err, ErrCommand) || cmds != nil {
				t.Fatalf("error %v (commands %v) is not a bare ErrCommand", err, cmds)
			}
			return
		}
		enc := AppendCommands(nil, cmds)
		if len(enc) > len(b) || !bytes.Equal(b[:len(enc)], enc) || !isZero(b[len(enc):]) {
			t.Fatalf("parsed %x as %#v, which encodes as %x", b, cmds, enc)
		}
		again, err := ParseCommands(enc)
		if err != nil || len(again) != len(cmds) {
			t.Fatalf("re-parsing %x: %v", enc, err)
		}
		for i := range cmds {
			if again[i] != cmds[i] {
				t.Fatalf("re-parsed command %d: %#v, want %#v", i, again[i], cmds[i])
			}
		}
	})
}

// unwrapErrors are the errors Unwrap may return.
var unwrapErrors = []error{ErrPacketTooShort, ErrVersion, ErrLowOrderPoint, ErrMAC, ErrCommand, ErrPayloadTag}

func isUnwrapError(err error) bool {
	for _, e := range unwrapErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// checkUnwrapped checks the invariants of a successful unwrap.
func checkUnwrapped(t *testing.T, f *Format, before, packet []byte, res Unwrapped) {
	t.Helper()
	h := f.Geometry().HeaderLength()
	if len(packet) != len(before) {
		t.Fatal("unwrap changed the packet's length")
	}
	if _, ok := res.Commands.NextHop(); ok {
		if res.Payload != nil || packet[0] != 0 || packet[1] != 0 {
			t.Fatal("forwarding hop returned a payload or changed the version")
		}
		return
	}
	want := len(packet) - h - PayloadTagLength
	if _, ok := res.Commands.SURBReply(); ok {
		want = len(packet) - h
	}
	if len(res.Payload) != want || &res.Payload[len(res.Payload)-1] != &packet[len(packet)-1] {
		t.Fatalf("payload of %d bytes not aliasing the packet's end, want %d", len(res.Payload), want)
	}
}

// FuzzUnwrap feeds arbitrary packets to an X25519 node: no panic, only the
// documented errors, and the invariants of checkUnwrapped on success. Almost
// every input fails the MAC; FuzzUnwrapAuthenticated reaches past it.
func FuzzUnwrap(f *testing.F) { fuzzUnwrap(f, X25519, "FuzzUnwrap") }

// FuzzUnwrapXWing is FuzzUnwrap for an X-Wing node.
func FuzzUnwrapXWing(f *testing.F) { fuzzUnwrap(f, XWing, "FuzzUnwrapXWing") }

func fuzzUnwrap(f *testing.F, s Scheme, corpus string) {
	checkCorpus(f, corpus)
	g := vectorGeometry
	g.Scheme = s
	format, err := New(g)
	if err != nil {
		f.Fatal(err)
	}
	key := fuzzKey(f, s)
	f.Add(make([]byte, g.PacketLength()))
	f.Fuzz(func(t *testing.T, packet []byte) {
		before := bytes.Clone(packet)
		res, err := format.Unwrap(key, packet)
		if err != nil {
			if !isUnwrapError(err) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		checkUnwrapped(t, format, before, packet, res)
	})
}

// FuzzUnwrapAuthenticated builds, from fuzzed routing information and
// payload, a packet whose header MAC is valid for an X25519 node (the harness
// encrypts and MACs the header as a sender would), so the fuzzer explores
// command parsing, payload decryption and forwarding. The parsed commands
// must encode to the start of the routing information.
func FuzzUnwrapAuthenticated(f *testing.F) {
	fuzzUnwrapAuthenticated(f, X25519, "FuzzUnwrapAuthenticated")
}

// FuzzUnwrapAuthenticatedXWing is FuzzUnwrapAuthenticated for an X-Wing node;
// the fuzzed routing information also carries the next hop's ciphertext.
func FuzzUnwrapAuthenticatedXWing(f *testing.F) {
	fuzzUnwrapAuthenticated(f, XWing, "FuzzUnwrapAuthenticatedXWing")
}

func fuzzUnwrapAuthenticated(f *testing.F, s Scheme, corpus string) {
	checkCorpus(f, corpus)
	g := vectorGeometry
	g.Scheme = s
	format, err := New(g)
	if err != nil {
		f.Fatal(err)
	}
	key := fuzzKey(f, s)
	element := make([]byte, s.elementLength())
	var secret [32]byte
	if s == X25519 {
		element[0] = 9 // the base point: a valid group element
		if err := x25519.ScalarMult(&secret, &key.secret, (*[32]byte)(element)); err != nil {
			f.Fatal(err)
		}
	} else {
		encapsulate(element, &secret, key.Public(), &[EncapsulationSeedLength]byte{1})
	}
	var keys packetKeys
	deriveKeys(&keys, &secret)
	h := g.HeaderLength()
	perHop := g.PerHopRoutingInfoLength()

	f.Add(AppendCommands(nil, Commands{NodeDelay{7}, NextNodeHop{}}), make([]byte, 135))
	f.Add(AppendCommands(nil, Commands{Recipient{}}), make([]byte, 135))
	f.Add(AppendCommands(nil, Commands{Recipient{}, SURBReply{}}), make([]byte, 40))
	f.Fuzz(func(t *testing.T, routing, payload []byte) {
		packet := make([]byte, h+len(payload))
		copy(packet[versionLength:], element)
		beta := packet[versionLength+len(element) : h-MACLength]
		copy(beta, routing)
		plain := bytes.Clone(beta)
		tail := make([]byte, perHop)
		keys.headerKeystreamXOR(beta, tail)
		var mac [MACLength]byte
		keys.headerMAC(&mac, packet[:h-MACLength])
		copy(packet[h-MACLength:], mac[:])
		copy(packet[h:], payload)
		before := bytes.Clone(packet)

		res, err := format.Unwrap(key, packet)
		if err != nil {
			if !errors.Is(err, ErrCommand) && !errors.Is(err, ErrPayloadTag) && !errors.Is(err, ErrPacketTooShort) {
				t.Fatalf("authenticated packet: %v", err)
			}
			return
		}
		enc := AppendCommands(nil, res.Commands)
		if !bytes.Equal(enc, plain[:len(enc)]) {
			t.Fatalf("commands %#v do not encode to the routing information %x", res.Commands, plain[:CommandsLength])
		}
		checkUnwrapped(t, format, before, packet, res)
		if next, ok := res.Commands.NextHop(); ok {
			// The next hop's beta is the rest of the decrypted routing
			// information, its element the one in this hop's slot (KEM),
			// and its MAC the one in the command.
			nextBeta := packet[versionLength+len(element) : h-MACLength]
			if !bytes.Equal(nextBeta[:len(plain)-perHop], plain[perHop:]) {
				t.Fatal("the shifted routing information is not the rest of the decrypted one")
			}
			if s.isKEM() && !bytes.Equal(packet[versionLength:versionLength+len(element)], plain[CommandsLength:perHop]) {
				t.Fatal("the next ciphertext is not the one in the hop's routing information")
			}
			if !bytes.Equal(packet[h-MACLength:h], next.MAC[:]) {
				t.Fatal("the next header's MAC is not the next-hop command's")
			}
		}
	})
}

// FuzzDecryptSURBPayload feeds arbitrary tokens and payloads to SURB
// decryption: no panic, only the documented errors.
func FuzzDecryptSURBPayload(f *testing.F) {
	checkCorpus(f, "FuzzDecryptSURBPayload")
	format, err := New(vectorGeometry)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(make([]byte, 2*ReplyKeyLength), make([]byte, 135))
	f.Fuzz(func(t *testing.T, token, payload []byte) {
		msg, err := format.DecryptSURBPayload(token, payload)
		if err != nil {
			if !errors.Is(err, ErrSURB) && !errors.Is(err, ErrPacketTooShort) && !errors.Is(err, ErrPayloadTag) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if len(msg) != len(payload)-PayloadTagLength {
			t.Fatalf("%d-byte message from a %d-byte payload", len(msg), len(payload))
		}
	})
}
