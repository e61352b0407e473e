package sphinx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// testNode is a node of a test network: its ID and Sphinx key pair.
type testNode struct {
	id     NodeID
	secret [SecretLength]byte
	priv   *PrivateKey
	pub    *PublicKey
}

// testNetwork makes n nodes of scheme s with keys from rng.
func testNetwork(t testing.TB, s Scheme, rng *rand.Rand, n int) []testNode {
	t.Helper()
	nodes := make([]testNode, n)
	for i := range nodes {
		fillRand(rng, nodes[i].id[:])
		fillRand(rng, nodes[i].secret[:])
		var err error
		if nodes[i].priv, err = NewPrivateKey(s, &nodes[i].secret); err != nil {
			t.Fatal(err)
		}
		nodes[i].pub = nodes[i].priv.Public()
	}
	return nodes
}

// forEachScheme runs test once for each scheme a network may use, on g with
// that scheme.
func forEachScheme(t *testing.T, g Geometry, test func(t *testing.T, f *Format)) {
	for _, s := range Schemes {
		t.Run(s.String(), func(t *testing.T) {
			g.Scheme = s
			f, err := New(g)
			if err != nil {
				t.Fatal(err)
			}
			test(t, f)
		})
	}
}

func fillRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// seededReader is a deterministic io.Reader for packet creation.
type seededReader struct{ rng *rand.Rand }

func (r seededReader) Read(p []byte) (int, error) {
	fillRand(r.rng, p)
	return len(p), nil
}

// randomPath picks a path of n hops with random delays at every hop but the
// last, and a recipient (and a SURB ID if surb) at the last.
func randomPath(rng *rand.Rand, nodes []testNode, n int, surb bool) ([]PathHop, Recipient, SURBReply) {
	var rcpt Recipient
	var reply SURBReply
	fillRand(rng, rcpt.ID[:])
	fillRand(rng, reply.ID[:])
	path := make([]PathHop, n)
	for i := range path {
		node := nodes[rng.IntN(len(nodes))]
		path[i] = PathHop{ID: node.id, PublicKey: node.pub}
		switch {
		case i < n-1:
			path[i].Commands = Commands{NodeDelay{Milliseconds: rng.Uint32()}}
		case surb:
			path[i].Commands = Commands{rcpt, reply}
		default:
			path[i].Commands = Commands{rcpt}
		}
	}
	return path, rcpt, reply
}

// privateKeyOf finds the private key of the node with the given ID.
func privateKeyOf(t testing.TB, nodes []testNode, id NodeID) *PrivateKey {
	t.Helper()
	for i := range nodes {
		if nodes[i].id == id {
			return nodes[i].priv
		}
	}
	t.Fatalf("no node %x", id)
	return nil
}

// route unwraps packet along path, checking each hop's commands, and returns
// the last hop's result.
func route(t testing.TB, f *Format, nodes []testNode, path []PathHop, packet []byte) (Unwrapped, error) {
	t.Helper()
	for i, hop := range path {
		res, err := f.Unwrap(privateKeyOf(t, nodes, hop.ID), packet)
		if err != nil {
			return res, fmt.Errorf("hop %d: %w", i, err)
		}
		if len(packet) != f.Geometry().PacketLength() {
			t.Fatalf("hop %d: packet length changed", i)
		}
		next, isForward := res.Commands.NextHop()
		if i < len(path)-1 {
			if !isForward || next.ID != path[i+1].ID {
				t.Fatalf("hop %d: next hop %x (%v), want %x", i, next.ID, isForward, path[i+1].ID)
			}
			if d, ok := res.Commands.Delay(); !ok || d != hop.Commands[0] {
				t.Fatalf("hop %d: delay %v, want %v", i, d, hop.Commands[0])
			}
			continue
		}
		if isForward {
			t.Fatalf("last hop %d has a next-hop command", i)
		}
		return res, nil
	}
	panic("unreachable")
}

// roundTrip sends message over a random path of n hops, forward or as a SURB
// reply, and checks that it arrives intact (zero-padded).
func roundTrip(t *testing.T, f *Format, rng *rand.Rand, nodes []testNode, n int, surb bool, message []byte) {
	t.Helper()
	path, rcpt, reply := randomPath(rng, nodes, n, surb)
	var packet []byte
	var token []byte
	if surb {
		s, tok, err := f.NewSURB(seededReader{rng}, path)
		if err != nil {
			t.Fatal(err)
		}
		token = tok
		var first NodeID
		packet, first, err = f.NewPacketFromSURB(s, message)
		if err != nil {
			t.Fatal(err)
		}
		if first != path[0].ID {
			t.Fatalf("SURB first hop %x, want %x", first, path[0].ID)
		}
	} else {
		var err error
		packet, err = f.NewPacket(seededReader{rng}, path, message)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(packet) != f.Geometry().PacketLength() {
		t.Fatalf("packet of %d bytes, want %d", len(packet), f.Geometry().PacketLength())
	}
	res, err := route(t, f, nodes, path, packet)
	if err != nil {
		t.Fatalf("%d hops, surb %v, %d-byte message: %v", n, surb, len(message), err)
	}
	if got, ok := res.Commands.Recipient(); !ok || got != rcpt {
		t.Fatalf("recipient %x, want %x", got.ID, rcpt.ID)
	}
	got := res.Payload
	if surb {
		if id, ok := res.Commands.SURBReply(); !ok || id != reply {
			t.Fatalf("SURB reply ID %x, want %x", id.ID, reply.ID)
		}
		got, err = f.DecryptSURBPayload(token, res.Payload)
		if err != nil {
			t.Fatalf("%d hops, %d-byte message: %v", n, len(message), err)
		}
	} else if _, ok := res.Commands.SURBReply(); ok {
		t.Fatal("forward packet has a SURB-reply command")
	}
	want := make([]byte, f.Geometry().UserPayloadLength)
	copy(want, message)
	if !bytes.Equal(got, want) {
		t.Fatalf("%d hops, surb %v: received %x, want %x", n, surb, got, want)
	}
}

// TestRoundTripSmallGeometry sends every message length from 0 to the
// maximum over every path length, forward and as SURB replies, on the vector
// geometry.
func TestRoundTripSmallGeometry(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{10}))
		nodes := testNetwork(t, g.Scheme, rng, 8)
		for length := 0; length <= g.UserPayloadLength; length++ {
			message := make([]byte, length)
			fillRand(rng, message)
			for _, surb := range []bool{false, true} {
				roundTrip(t, f, rng, nodes, 1+length%g.MaxHops, surb, message)
			}
		}
		for hops := 1; hops <= g.MaxHops; hops++ {
			for _, surb := range []bool{false, true} {
				roundTrip(t, f, rng, nodes, hops, surb, []byte("hello"))
			}
		}
	})
}

// TestRoundTripDefaultGeometry sends the boundary lengths and seeded samples
// over the production geometry.
func TestRoundTripDefaultGeometry(t *testing.T) {
	forEachScheme(t, DefaultGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{11}))
		nodes := testNetwork(t, g.Scheme, rng, 12)
		max := g.UserPayloadLength
		lengths := []int{0, 1, 2, 31, 32, 33, max - 1, max}
		for range 8 {
			lengths = append(lengths, rng.IntN(max+1))
		}
		for i, length := range lengths {
			message := make([]byte, length)
			fillRand(rng, message)
			for _, surb := range []bool{false, true} {
				roundTrip(t, f, rng, nodes, 1+i%g.MaxHops, surb, message)
			}
		}
	})
}

// TestRoundTripSeeds is a property test: for many seeds, a random geometry,
// path and message arrive intact.
func TestRoundTripSeeds(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		rng := rand.New(rand.NewChaCha8([32]byte{12, byte(seed)}))
		g := Geometry{MaxHops: 1 + rng.IntN(7), UserPayloadLength: 1 + rng.IntN(600), Scheme: Schemes[seed%len(Schemes)]}
		f, err := New(g)
		if err != nil {
			t.Fatal(err)
		}
		nodes := testNetwork(t, g.Scheme, rng, 4)
		message := make([]byte, rng.IntN(g.UserPayloadLength+1))
		fillRand(rng, message)
		roundTrip(t, f, rng, nodes, 1+rng.IntN(g.MaxHops), rng.IntN(2) == 1, message)
	}
}

// TestDeterministicCreation checks that creation reads randomness only from
// the given reader, in the spec's order: the same stream gives the same
// bytes, and SURB creation is reply key then packet creation's reads.
func TestDeterministicCreation(t *testing.T) {
	forEachScheme(t, vectorGeometry, func(t *testing.T, f *Format) {
		g := f.Geometry()
		rng := rand.New(rand.NewChaCha8([32]byte{13}))
		nodes := testNetwork(t, g.Scheme, rng, 5)
		path, _, _ := randomPath(rng, nodes, 3, false)
		secrets := 32
		if g.Scheme.isKEM() {
			secrets = 3 * EncapsulationSeedLength
		}
		stream := make([]byte, secrets+g.PerHopRoutingInfoLength()*2)
		fillRand(rng, stream)

		a, err := f.NewPacket(bytes.NewReader(stream), path, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.NewPacket(bytes.NewReader(stream), path, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("same random stream, different packets")
		}
		// One byte short of what a 3-hop path on a 5-hop geometry reads.
		if _, err := f.NewPacket(bytes.NewReader(stream[:len(stream)-1]), path, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("short random stream: %v, want io.ErrUnexpectedEOF", err)
		}

		surbPath, _, _ := randomPath(rng, nodes, 3, true)
		if _, err := f.NewPacket(bytes.NewReader(stream), surbPath, nil); err == nil {
			t.Fatal("a forward packet accepted a SURB-reply command at its last hop")
		}
		// A SURB reads the reply key first, then exactly what packet
		// creation reads: with another reply key and the same rest, the
		// header is the same.
		h := g.HeaderLength()
		var surbs [2][]byte
		for i := range surbs {
			surbStream := append(bytes.Repeat([]byte{byte(i + 1)}, ReplyKeyLength), stream...)
			surb, _, err := f.NewSURB(bytes.NewReader(surbStream), surbPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(surb[h+NodeIDLength:], surbStream[:ReplyKeyLength]) {
				t.Fatal("the SURB's reply key is not the first 176 random bytes")
			}
			surbs[i] = surb
		}
		if !bytes.Equal(surbs[0][:h], surbs[1][:h]) {
			t.Fatal("the SURB header depends on the reply key's bytes")
		}
	})
}
