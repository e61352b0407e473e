package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/clientlink"
	"github.com/backchannel/backchannel/internal/directory"
	"github.com/backchannel/backchannel/internal/mailbox"
	"github.com/backchannel/backchannel/internal/node"
	"github.com/backchannel/backchannel/internal/sphinx"
	"github.com/backchannel/backchannel/internal/testnet"
	"github.com/backchannel/backchannel/internal/wire"
)

// runDemo is `backchannel demo`: a whole network on loopback (2 providers, 3
// layers of 2 mixes, each node with its own listener, talking over real
// sockets), and two users exchanging packets through it, printed as a
// timeline. The sessions, introductions and the rest of the scenario join it
// as they are built.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	messages := fs.Int("messages", 5, "packets alice sends to bob")
	keep := fs.Bool("keep", false, "keep the network's files after the demo")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := demo(*messages, *keep, stdout); err != nil {
		fmt.Fprintf(stderr, "backchannel: demo: %v\n", err)
		return 1
	}
	return 0
}

type demoUser struct {
	name     string
	provider *directory.Node
	key      wire.Keypair
	box      mailbox.ID
	link     *clientlink.Link
}

func demo(messages int, keep bool, out io.Writer) error {
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(out, "%7.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	dir, err := os.MkdirTemp("", "backchannel-demo-")
	if err != nil {
		return err
	}
	if keep {
		say("the network's files are in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	const layers, mixes, providers = 3, 2, 2
	listeners := make([]net.Listener, providers+layers*mixes)
	addresses := make([]string, len(listeners))
	for i := range listeners {
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		addresses[i] = listeners[i].Addr().String()
	}
	params := testnet.DefaultParameters(layers)
	params.MeanDelay = 20 * time.Millisecond
	params.PollInterval = 100 * time.Millisecond
	tn, err := testnet.Generate(testnet.Options{
		Dir: dir, Layers: layers, MixesPerLayer: mixes, Providers: providers, Addresses: addresses,
		Parameters: params, Validity: time.Hour, Now: time.Now(), Rand: cryptoRand{},
	})
	if err != nil {
		return err
	}
	say("directory authority signed the network document for epoch %d: %d providers, %d layers of %d mixes, on loopback", tn.Document.Epoch, providers, layers, mixes)

	doc := tn.Document
	users := []*demoUser{{name: "alice", provider: &doc.Nodes[0]}, {name: "bob", provider: &doc.Nodes[1]}}
	for _, u := range users {
		if u.key, err = wire.GenerateKeypair(cryptoRand{}); err != nil {
			return err
		}
		cryptoRand{}.Read(u.box[:])
		accounts := filepath.Join(filepath.Dir(tn.Configs[u.provider.Name]), "accounts.txt")
		if err := node.AddAccount(accounts, [wire.KeySize]byte(u.key.Public), u.box); err != nil {
			return err
		}
		say("%s's account added at %s", u.name, u.provider.Name)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	nodes := make([]*node.Node, len(doc.Nodes))
	for i, n := range doc.Nodes {
		built, _, err := node.Load(tn.Configs[n.Name], listeners[i], nil, cryptoRand{})
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		nodes[i] = built
		wg.Add(1)
		go func() { defer wg.Done(); built.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	say("%d nodes running, each on its own socket", len(nodes))

	format, err := sphinx.New(params.Geometry)
	if err != nil {
		return err
	}
	frame := wire.FrameSizeFor(format.Geometry().PacketLength())
	for _, u := range users {
		if u.link, err = clientlink.Dial(ctx, u.provider.Address, u.key, u.provider.LinkKey, frame); err != nil {
			return err
		}
		defer u.link.Close()
		say("%s connected to %s (Noise XX link, fixed-size frames)", u.name, u.provider.Name)
	}
	alice, bob := users[0], users[1]

	rng := rand.New(rand.NewChaCha8(seed()))
	type sent struct {
		at    time.Time
		route string
		delay time.Duration
		token []byte
	}
	sentAt := map[uint32]sent{}
	for i := range messages {
		path, route, total := demoPath(rng, doc, alice.provider, bob.provider, bob.box, params.MeanDelay, false)
		replyPath, _, _ := demoPath(rng, doc, bob.provider, alice.provider, alice.box, params.MeanDelay, true)
		surb, token, err := format.NewSURB(cryptoRand{}, replyPath)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("message %d from alice", i+1)
		body := binary.BigEndian.AppendUint32(nil, uint32(i))
		body = binary.BigEndian.AppendUint16(body, uint16(len(surb)))
		body = append(append(body, surb...), text...)
		packet, err := format.NewPacket(cryptoRand{}, path, body)
		if err != nil {
			return err
		}
		if _, err := alice.link.Send(packet); err != nil {
			return err
		}
		sentAt[uint32(i)] = sent{at: time.Now(), route: route, delay: total, token: token}
		say("alice → bob  %q sent with a SURB for the reply; route %s; chosen delays %v", text, route, total.Round(time.Millisecond))
	}

	deadline := time.Now().Add(30 * time.Second)
	received, confirmed := 0, 0
	for confirmed < messages {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d messages confirmed in 30s", confirmed, messages)
		}
		time.Sleep(params.PollInterval)
		batch, _, err := bob.link.Fetch(ctx)
		if err != nil {
			return err
		}
		for _, m := range batch {
			var d wire.Delivery
			if err := d.UnmarshalBinary(m.Packet); err != nil {
				return err
			}
			i := binary.BigEndian.Uint32(d.Payload)
			n := int(binary.BigEndian.Uint16(d.Payload[4:]))
			surb := d.Payload[6 : 6+n]
			text := strings.TrimRight(string(d.Payload[6+n:]), "\x00")
			received++
			s := sentAt[i]
			say("bob fetched %q after %v (its delays: %v); replying through alice's SURB", text, time.Since(s.at).Round(time.Millisecond), s.delay.Round(time.Millisecond))
			reply, first, err := format.NewPacketFromSURB(surb, binary.BigEndian.AppendUint32([]byte("delivered #"), i))
			if err != nil {
				return err
			}
			if first != bob.provider.ID() {
				return fmt.Errorf("the SURB starts at an unexpected node")
			}
			if _, err := bob.link.Send(reply); err != nil {
				return err
			}
		}
		batch, _, err = alice.link.Fetch(ctx)
		if err != nil {
			return err
		}
		for _, m := range batch {
			var d wire.Delivery
			if err := d.UnmarshalBinary(m.Packet); err != nil || d.SURBID == nil {
				return fmt.Errorf("alice got something that is not a SURB reply")
			}
			for i, s := range sentAt {
				msg, err := format.DecryptSURBPayload(s.token, d.Payload)
				if err != nil {
					continue
				}
				confirmed++
				say("alice ← bob  delivery confirmation for message %d, %v after sending (%q)", i+1, time.Since(s.at).Round(time.Millisecond), strings.TrimRight(string(msg[:11]), "\x00"))
				delete(sentAt, i)
				break
			}
		}
	}
	say("done: %d messages delivered and confirmed; the relays saw only fixed-size packets", confirmed)
	return nil
}

// demoPath picks a route from one provider through one random mix per layer
// to another, with exponential delays of the given mean at each hop but the
// last (Loopix), for mailbox box; for a SURB the last hop also names the SURB.
func demoPath(rng *rand.Rand, doc *directory.Document, from, to *directory.Node, box mailbox.ID, mean time.Duration, surb bool) ([]sphinx.PathHop, string, time.Duration) {
	var total time.Duration
	hop := func(n *directory.Node) sphinx.PathHop {
		d := time.Duration(rng.ExpFloat64() * float64(mean))
		d = min(d, time.Duration(math.MaxUint32)*time.Millisecond)
		total += d.Truncate(time.Millisecond)
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: sphinx.Commands{sphinx.NodeDelay{Milliseconds: uint32(d.Milliseconds())}}}
	}
	path := []sphinx.PathHop{hop(from)}
	names := []string{from.Name}
	for layer := uint8(1); layer <= doc.Parameters.Layers; layer++ {
		mixes := doc.Layer(layer)
		m := mixes[rng.IntN(len(mixes))]
		path = append(path, hop(m))
		names = append(names, m.Name)
	}
	last := sphinx.PathHop{ID: to.ID(), PublicKey: to.SphinxKey, Commands: sphinx.Commands{sphinx.Recipient{ID: box}}}
	if surb {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], rng.Uint64())
		last.Commands = append(last.Commands, sphinx.SURBReply{ID: id})
	}
	names = append(names, to.Name)
	return append(path, last), strings.Join(names, " → "), total
}

func seed() (s [32]byte) {
	cryptoRand{}.Read(s[:])
	return s
}
