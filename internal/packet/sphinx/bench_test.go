package sphinx

import (
	"crypto/ecdh"
	"crypto/sha512"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/lioness"
	"github.com/backchannel/backchannel/internal/packet/x25519"
)

// benchGeometry is Katzenpost's benchmark geometry: 5 hops, 2,000-byte user
// payload (2,508-byte packets), so the figures compare with its published
// ones.
var benchGeometry = Geometry{MaxHops: 5, UserPayloadLength: 2000}

// benchSetup makes the format of benchGeometry with scheme s, five nodes
// and a 5-hop path through them.
func benchSetup(b *testing.B, s Scheme) (*Format, *rand.Rand, []testNode, []PathHop) {
	g := benchGeometry
	g.Scheme = s
	f, err := New(g)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{40}))
	nodes := testNetwork(b, s, rng, 5)
	path := make([]PathHop, 5)
	for i := range path {
		path[i] = PathHop{ID: nodes[i].id, PublicKey: nodes[i].pub, Commands: Commands{NodeDelay{Milliseconds: 100}}}
	}
	path[4].Commands = Commands{Recipient{}}
	return f, rng, nodes, path
}

// distinctPackets makes 64 different full-size packets for path, so that an
// unwrap benchmark never repeats the same input back to back.
func distinctPackets(b *testing.B, f *Format, rng *rand.Rand, path []PathHop) [][]byte {
	packets := make([][]byte, 64)
	message := make([]byte, f.Geometry().UserPayloadLength)
	for i := range packets {
		var err error
		if packets[i], err = f.NewPacket(seededReader{rng}, path, message); err != nil {
			b.Fatal(err)
		}
	}
	return packets
}

// BenchmarkUnwrap times one unwrap at the first hop of distinct 5-hop
// packets: two X25519 ladders, HKDF, HMAC, AES-CTR over the routing
// information and LIONESS over 2,032 bytes. Each iteration copies a
// pre-made packet (2.5 KB, tens of nanoseconds) because unwrap works in
// place.
func BenchmarkUnwrap(b *testing.B) { benchUnwrap(b, X25519) }

// BenchmarkUnwrapXWing is BenchmarkUnwrap on the X-Wing format: one X-Wing
// decapsulation (from an expanded key) and AES-CTR over 7 KB of routing
// information instead of the ladders; 9,196-byte packets.
func BenchmarkUnwrapXWing(b *testing.B) { benchUnwrap(b, XWing) }

func benchUnwrap(b *testing.B, s Scheme) {
	f, rng, nodes, path := benchSetup(b, s)
	packets := distinctPackets(b, f, rng, path)
	work := make([]byte, f.Geometry().PacketLength())
	b.SetBytes(int64(len(work)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(work, packets[i%len(packets)])
		i++
		if _, err := f.Unwrap(nodes[0].priv, work); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate times making one 5-hop forward packet.
func BenchmarkCreate(b *testing.B) { benchCreate(b, X25519) }

// BenchmarkCreateXWing times making one 5-hop X-Wing packet: five
// encapsulations.
func BenchmarkCreateXWing(b *testing.B) { benchCreate(b, XWing) }

func benchCreate(b *testing.B, s Scheme) {
	f, rng, _, path := benchSetup(b, s)
	message := make([]byte, f.Geometry().UserPayloadLength)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.NewPacket(seededReader{rng}, path, message); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSURBReply times making a reply packet from a 5-hop SURB (what the
// holder of a SURB pays: one LIONESS encryption and copies).
func BenchmarkSURBReply(b *testing.B) {
	f, rng, _, path := benchSetup(b, X25519)
	path[4].Commands = Commands{Recipient{}, SURBReply{}}
	surb, _, err := f.NewSURB(seededReader{rng}, path)
	if err != nil {
		b.Fatal(err)
	}
	message := make([]byte, benchGeometry.UserPayloadLength)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.NewPacketFromSURB(surb, message); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewSURB times making a 5-hop SURB and its decryption token.
func BenchmarkNewSURB(b *testing.B) {
	f, rng, _, path := benchSetup(b, X25519)
	path[4].Commands = Commands{Recipient{}, SURBReply{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.NewSURB(seededReader{rng}, path); err != nil {
			b.Fatal(err)
		}
	}
}

// ecdhPair makes a crypto/ecdh private key and another party's public key,
// once, for timing ECDH calls.
func ecdhPair(b *testing.B, rng *rand.Rand) (*ecdh.PrivateKey, *ecdh.PublicKey) {
	var a, c [32]byte
	fillRand(rng, a[:])
	fillRand(rng, c[:])
	priv, err := ecdh.X25519().NewPrivateKey(a[:])
	if err != nil {
		b.Fatal(err)
	}
	other, err := ecdh.X25519().NewPrivateKey(c[:])
	if err != nil {
		b.Fatal(err)
	}
	return priv, other.PublicKey()
}

// BenchmarkX25519 is the unit the other figures are read in: one crypto/ecdh
// ECDH call with both keys made once.
func BenchmarkX25519(b *testing.B) {
	priv, pub := ecdhPair(b, rand.New(rand.NewChaCha8([32]byte{41})))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrapStages times each step of an unwrap on its own, to show
// where the time of BenchmarkUnwrap goes.
func BenchmarkUnwrapStages(b *testing.B) {
	f, rng, nodes, path := benchSetup(b, X25519)
	packet, err := f.NewPacket(seededReader{rng}, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := benchGeometry.HeaderLength()
	alpha := (*[32]byte)(packet[versionLength : versionLength+GroupElementLength])
	var secret [32]byte
	if err := x25519.ScalarMult(&secret, &nodes[0].priv.secret, alpha); err != nil {
		b.Fatal(err)
	}
	var keys packetKeys
	deriveKeys(&keys, &secret)
	b.Run("ladder", func(b *testing.B) {
		var out [32]byte
		for b.Loop() {
			_ = x25519.ScalarMult(&out, &nodes[0].priv.secret, alpha)
		}
	})
	b.Run("kdf", func(b *testing.B) {
		var k packetKeys
		for b.Loop() {
			deriveKeys(&k, &secret)
		}
	})
	b.Run("mac", func(b *testing.B) {
		var mac [MACLength]byte
		for b.Loop() {
			keys.headerMAC(&mac, packet[:h-MACLength])
		}
	})
	b.Run("routing", func(b *testing.B) {
		beta := make([]byte, benchGeometry.RoutingInfoLength())
		var tail [CommandsLength]byte
		for b.Loop() {
			keys.headerKeystreamXOR(beta, tail[:])
		}
	})
	b.Run("commands", func(b *testing.B) {
		cmds := AppendCommands(nil, Commands{NodeDelay{1}, NextNodeHop{}})
		cmds = append(cmds, make([]byte, CommandsLength-len(cmds))...)
		for b.Loop() {
			if _, err := ParseCommands(cmds); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lioness", func(b *testing.B) {
		payload := make([]byte, benchGeometry.PayloadLength())
		for b.Loop() {
			_ = lioness.Decrypt(keys.lionessKey(), keys.lionessIV(), payload)
		}
	})
	b.Run("blinding", func(b *testing.B) {
		var bf [32]byte
		for b.Loop() {
			keys.blindingFactor(&bf)
		}
	})
	b.Run("replaytag", func(b *testing.B) {
		for b.Loop() {
			_ = sha512.Sum512_256(alpha[:])
		}
	})
}

// BenchmarkRatio measures, interleaved in one loop, an operation and one
// crypto/ecdh X25519, and reports their ratio ("x25519s" per operation): on
// shared, noisy machines a ratio taken sample by sample is steadier than one
// taken between two benchmarks run seconds apart. ns/op is the sum of both.
func BenchmarkRatio(b *testing.B) {
	for _, s := range []Scheme{X25519, XWing} {
		f, rng, nodes, path := benchSetup(b, s)
		priv, pub := ecdhPair(b, rng)
		message := make([]byte, f.Geometry().UserPayloadLength)
		packets := distinctPackets(b, f, rng, path)
		work := make([]byte, f.Geometry().PacketLength())

		ratio := func(b *testing.B, op func(i int)) {
			var opTime, x25519Time time.Duration
			i := 0
			for b.Loop() {
				t0 := time.Now()
				op(i)
				t1 := time.Now()
				if _, err := priv.ECDH(pub); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				opTime += t1.Sub(t0)
				x25519Time += t2.Sub(t1)
				i++
			}
			b.ReportMetric(float64(opTime)/float64(x25519Time), "x25519s")
		}
		// The X25519 format's sub-benchmarks keep their old names, so that
		// BENCHMARKS.md's earlier figures compare.
		suffix := ""
		if s != X25519 {
			suffix = "-" + s.String()
		}
		b.Run("unwrap"+suffix, func(b *testing.B) {
			ratio(b, func(i int) {
				copy(work, packets[i%len(packets)])
				if _, err := f.Unwrap(nodes[0].priv, work); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("create"+suffix, func(b *testing.B) {
			ratio(b, func(int) {
				if _, err := f.NewPacket(seededReader{rng}, path, message); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkUnwrapParallel unwraps distinct packets on every core at once:
// with -cpu 1,2 it shows how far two cores are from twice one.
func BenchmarkUnwrapParallel(b *testing.B) {
	for _, s := range []Scheme{X25519, XWing} {
		name := "x25519"
		if s != X25519 {
			name = s.String()
		}
		b.Run(name, func(b *testing.B) {
			f, rng, nodes, path := benchSetup(b, s)
			packets := distinctPackets(b, f, rng, path)
			b.RunParallel(func(pb *testing.PB) {
				work := make([]byte, f.Geometry().PacketLength())
				for i := 0; pb.Next(); i++ {
					copy(work, packets[i%len(packets)])
					if _, err := f.Unwrap(nodes[0].priv, work); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
