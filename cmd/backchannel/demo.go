package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/directory"
	"github.com/backchannel/backchannel/internal/identity"
	"github.com/backchannel/backchannel/internal/node"
	"github.com/backchannel/backchannel/internal/testnet"
	"github.com/backchannel/backchannel/internal/vault"
)

// runDemo is `backchannel demo`: a whole network on loopback (2 providers,
// 3 layers of 2 mixes, each node with its own listener, talking over real
// sockets), and two users, each a full client with cover traffic, who
// exchange messages through it, printed as a timeline of what each user
// sees. Introductions and the rest of the scenario join it as they are
// built.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	messages := fs.Int("messages", 3, "messages alice sends to bob (bob answers each)")
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

// demoTimeline prints timestamped lines; it is shared by the watchers.
type demoTimeline struct {
	start time.Time
	out   io.Writer
	mu    sync.Mutex
}

func (d *demoTimeline) say(format string, a ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%7.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, a...))
}

// demoUser is one user of the demo.
type demoUser struct {
	name string
	c    *client.Client
}

func demo(messages int, keep bool, out io.Writer) error {
	tl := &demoTimeline{start: time.Now(), out: out}
	dir, err := os.MkdirTemp("", "backchannel-demo-")
	if err != nil {
		return err
	}
	if keep {
		tl.say("the network's files are in %s", dir)
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
	params.PollInterval = 50 * time.Millisecond
	params.SendRate, params.LoopRate, params.DropRate = 20, 2, 2
	tn, err := testnet.Generate(testnet.Options{
		Dir: filepath.Join(dir, "network"), Layers: layers, MixesPerLayer: mixes, Providers: providers, Addresses: addresses,
		Parameters: params, Validity: time.Hour, Now: time.Now(), Rand: rand.Reader,
	})
	if err != nil {
		return err
	}
	tl.say("directory authority signed the network document for epoch %d: %d providers, %d layers of %d mixes, on loopback", tn.Document.Epoch, providers, layers, mixes)
	tl.say("cover traffic: every client sends %.0f send slots, %.0f loops and %.0f drops per second (Poisson) and polls every %v; mean delay %v per hop",
		params.SendRate, params.LoopRate, params.DropRate, params.PollInterval, params.MeanDelay)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, name := range tn.Names {
		built, _, err := node.Load(tn.Configs[name], listeners[i], nil, rand.Reader)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); built.Run(ctx) }()
	}
	tl.say("%d nodes running, each on its own socket", len(tn.Names))

	alice, err := demoClient(tn, dir, "alice", "provider-a", tl)
	if err != nil {
		return err
	}
	bob, err := demoClient(tn, dir, "bob", "provider-b", tl)
	if err != nil {
		return err
	}
	defer alice.c.Close()
	defer bob.c.Close()
	if err := alice.c.AddContact("bob", bob.c.Self()); err != nil {
		return err
	}
	if err := bob.c.AddContact("alice", alice.c.Self()); err != nil {
		return err
	}
	tl.say("alice and bob exchanged contact cards; both see safety number %s", identity.SafetyNumber(alice.c.Self(), bob.c.Self()))
	for _, u := range []*demoUser{alice, bob} {
		wg.Add(2)
		go func() { defer wg.Done(); u.c.Run(ctx) }()
		go func() { defer wg.Done(); watch(ctx, u, tl) }()
	}

	texts := []string{"We are open to talks on a ceasefire, if this stays between us.", "Propose a venue and a date.", "Our envoy can travel next week."}
	for i := range messages {
		text := texts[i%len(texts)]
		if _, err := alice.c.Send("bob", client.Content{Kind: client.Text, Body: []byte(text)}); err != nil {
			return err
		}
		tl.say("alice queues a message to bob: %q", text)
	}
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	answered := 0
	for {
		changed := bob.c.Changed()
		inbox, err := bob.c.Inbox()
		if err != nil {
			return err
		}
		for ; answered < len(inbox); answered++ {
			reply := fmt.Sprintf("Received your message %d. We will answer through this channel only.", answered+1)
			if _, err := bob.c.Send("alice", client.Content{Kind: client.Text, Body: []byte(reply)}); err != nil {
				return err
			}
			tl.say("bob queues an answer to alice: %q", reply)
		}
		if answered == messages && settled(alice.c) && settled(bob.c) {
			break
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("not every message was delivered in 2 minutes")
		}
	}
	aliceInbox, _ := alice.c.Inbox()
	for len(aliceInbox) < messages {
		changed := alice.c.Changed()
		if aliceInbox, _ = alice.c.Inbox(); len(aliceInbox) >= messages {
			break
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("bob's answers did not all arrive in 2 minutes")
		}
	}
	for _, u := range []*demoUser{alice, bob} {
		s := u.c.Stats()
		tl.say("%s sent %d fragments (%d again), %d acks, %d drop and %d loop cover packets; %d of %d loops came back",
			u.name, s.FragmentsSent, s.Retransmissions, s.AcksSent, s.DropsSent, s.LoopsSent, s.LoopsReturned, s.LoopsSent)
	}
	tl.say("done: %d messages each way delivered and acknowledged end to end; the relays saw only fixed-size packets, at a rate that did not change when the users talked", messages)
	return nil
}

// demoClient makes a user's client and its account at the provider.
func demoClient(tn *testnet.Network, dir, name, provider string, tl *demoTimeline) (*demoUser, error) {
	var p *directory.Node
	for _, n := range tn.Document.Providers() {
		if n.Name == provider {
			p = n
		}
	}
	network := client.Network{
		Authorities: []ed25519.PublicKey{tn.Authority}, Threshold: 1, ClockSkew: time.Minute,
		Provider: client.Provider{Name: p.Name, Address: p.Address, LinkKey: p.LinkKey, Identity: [32]byte(p.IdentityKey)},
	}
	c, account, err := client.Create(client.Config{
		Dir: filepath.Join(dir, name), Passphrase: []byte(name + "'s demo passphrase"), Rand: rand.Reader,
		VaultParams: vault.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1},
	}, network)
	if err != nil {
		return nil, err
	}
	accounts := filepath.Join(filepath.Dir(tn.Configs[provider]), "accounts.txt")
	if err := node.AddAccount(accounts, account.LinkKey, account.Mailbox); err != nil {
		return nil, err
	}
	tl.say("%s created an identity (X25519, Ed25519, ML-KEM-768 prekeys) with a mailbox at %s", name, provider)
	return &demoUser{name: name, c: c}, nil
}

// settled reports whether every sent message is delivered or failed.
func settled(c *client.Client) bool {
	for _, m := range c.Outbox() {
		if m.Status == client.Queued || m.Status == client.Sent {
			return false
		}
	}
	return true
}

// watch prints a user's status changes: sent messages moving from queued
// to sent to delivered (or failed), sessions, and messages arriving.
func watch(ctx context.Context, u *demoUser, tl *demoTimeline) {
	statuses := map[string]client.Status{}
	sessions := map[string]string{}
	seen := map[string]bool{}
	for {
		changed := u.c.Changed()
		for _, m := range u.c.Outbox() {
			if statuses[m.ID] != m.Status {
				statuses[m.ID] = m.Status
				line := fmt.Sprintf("%s → %s  message %s…: %s", u.name, m.Contact, m.ID[:8], m.Status)
				if m.Status == client.Delivered {
					line += fmt.Sprintf(" (acknowledged %v after queuing)", time.Since(m.Time).Round(time.Millisecond))
				}
				if m.Reason != "" {
					line += ": " + m.Reason
				}
				tl.say("%s", line)
			}
		}
		for _, ct := range u.c.Contacts() {
			if sessions[ct.Name] != ct.Session {
				sessions[ct.Name] = ct.Session
				if ct.Session != "none" {
					tl.say("%s: session with %s %s (PQXDH, then the Double Ratchet)", u.name, ct.Name, ct.Session)
				}
			}
		}
		if inbox, err := u.c.Inbox(); err == nil {
			for _, m := range inbox {
				if !seen[m.ID] {
					seen[m.ID] = true
					tl.say("%s ← %s  %q", u.name, m.Contact, m.Text)
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
