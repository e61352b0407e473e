package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/features/intro"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/node"
	"github.com/backchannel/backchannel/internal/tools/testnet"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// runDemo is `backchannel demo`: a whole network on loopback (2 providers,
// 3 layers of 2 mixes, each node with its own listener, talking over real
// sockets) and three users, each a full client with cover traffic, who play
// the backchannel story: a mediator introduces two parties under labels,
// they check their mutual interest in talks, one sends its signal and the
// other answers, and a message goes through the mediator with a signed
// receipt. It prints a timeline and exits 0 only if every step did what it
// should.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	o := demoOptions{}
	fs.DurationVar(&o.meanDelay, "mean-delay", 20*time.Millisecond, "mean delay per hop (Loopix); short for the demo")
	fs.DurationVar(&o.within, "within", 5*time.Second, "how long the mutual interest check gives the other side to answer")
	fs.BoolVar(&o.aliceYes, "alice-yes", true, "alice answers yes to the interest check")
	fs.BoolVar(&o.bobYes, "bob-yes", true, "bob answers yes to the interest check")
	fs.BoolVar(&o.keep, "keep", false, "keep the network's files after the demo")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := demo(o, stdout); err != nil {
		fmt.Fprintf(stderr, "backchannel: demo: %v\n", err)
		return 1
	}
	return 0
}

type demoOptions struct {
	meanDelay, within time.Duration
	aliceYes, bobYes  bool
	keep              bool
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
	f    *features.Set
}

// await waits until cond holds for the user's client, checked at each of
// its changes, for at most a minute.
func (u *demoUser) await(what string, cond func() bool) error {
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		changed := u.c.Changed()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("%s: waited a minute for %s", u.name, what)
		}
	}
}

func demo(o demoOptions, out io.Writer) error {
	tl := &demoTimeline{start: time.Now(), out: out}
	dir, err := os.MkdirTemp("", "backchannel-demo-")
	if err != nil {
		return err
	}
	if o.keep {
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
	params.MeanDelay = o.meanDelay
	params.PollInterval = 50 * time.Millisecond
	params.SendRate, params.LoopRate, params.DropRate = 20, 2, 2
	tn, err := testnet.Generate(testnet.Options{
		Dir: filepath.Join(dir, "network"), Layers: layers, MixesPerLayer: mixes, Providers: providers, Addresses: addresses,
		Parameters: params, Validity: time.Hour, Now: time.Now(), Rand: rand.Reader,
		// The demo's nodes stop together, after its last step: a next hop
		// that is itself stopping would never acknowledge what a node
		// holds, so no node waits long for it.
		DrainTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	tl.say("a directory authority signed the network document for epoch %d: %d providers, %d layers of %d mixes, on loopback", tn.Document.Epoch, providers, layers, mixes)
	tl.say("demo parameters (short, for the demo): mean delay %v per hop; each client sends %.0f send slots, %.0f loops and %.0f drops per second (Poisson) and polls every %v",
		params.MeanDelay, params.SendRate, params.LoopRate, params.DropRate, params.PollInterval)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var users []*demoUser
	defer func() {
		cancel()
		wg.Wait()
		for _, u := range users {
			u.c.Close()
		}
	}()
	for i, name := range tn.Names {
		built, _, err := node.Load(ctx, tn.Configs[name], listeners[i], nil, rand.Reader)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); built.Run(ctx) }()
	}
	tl.say("%d nodes running, each on its own socket", len(tn.Names))

	for _, u := range []struct{ name, provider, officer string }{{"mediator", "provider-a", dutyOfficer}, {"alice", "provider-a", ""}, {"bob", "provider-b", ""}} {
		du, err := demoClient(tn, dir, u.name, u.provider, u.officer, tl)
		if err != nil {
			return err
		}
		users = append(users, du)
	}
	mediator, alice, bob := users[0], users[1], users[2]
	for _, party := range []*demoUser{alice, bob} {
		if err := mediator.c.AddContact(party.name, party.c.Self()); err != nil {
			return err
		}
		if err := party.c.AddContact("mediator", mediator.c.Self()); err != nil {
			return err
		}
		tl.say("the mediator and %s know each other (cards exchanged in person; safety number %s)", party.name, identity.SafetyNumber(mediator.c.Self(), party.c.Self()))
	}
	if err := officeOfTwo(tl, mediator); err != nil {
		return err
	}
	tl.say("alice and bob have never been in touch")
	for _, u := range users {
		wg.Add(2)
		go func() { defer wg.Done(); u.c.Run(ctx) }()
		go func() { defer wg.Done(); watch(ctx, u, tl) }()
	}
	return story(o, tl, mediator, alice, bob)
}

// story plays the scenario; each step waits for what it needs.
// The demo's labels: how the mediator shows each party to the other.
const labelForAlice, labelForBob = "a party in country Y", "a party in country X"

func story(o demoOptions, tl *demoTimeline, mediator, alice, bob *demoUser) error {
	tl.say("— 1. the mediator introduces them: alice will see bob only as %q, bob alice as %q", labelForAlice, labelForBob)
	if err := introduce(tl, mediator, alice, bob); err != nil {
		return err
	}
	tl.say("both accepted: each now holds the other's card; the mediator will see nothing of what follows")

	tl.say("— 2. alice opens an end-to-end session with %q (PQXDH: X25519 and ML-KEM-768, then the Double Ratchet)", labelForAlice)
	if _, err := alice.c.Send(labelForAlice, client.Content{Kind: client.Text, Body: []byte("Greetings. This channel is end to end.")}); err != nil {
		return err
	}
	if err := alice.await("the greeting delivered", func() bool { return settled(alice.c) }); err != nil {
		return err
	}

	question := "Are you open to talks on a ceasefire?"
	tl.say("— 3. mutual interest check: alice asks %q; bob has %v to answer; nobody learns a lone yes", question, o.within)
	match, err := checkInterest(o, tl, question, alice, bob)
	if err != nil {
		return err
	}
	if !match {
		tl.say("no match: alice does not send her signal, and neither learns more than that")
	} else {
		tl.say("— 4. alice sends her signal; bob answers")
		if err := sendSignal(alice, bob); err != nil {
			return err
		}
	}

	tl.say("— 5. alice conveys a message through the mediator, asking for a signed receipt")
	if err := conveyWithReceipt(tl, mediator, alice); err != nil {
		return err
	}
	for _, u := range []*demoUser{mediator, alice, bob} {
		s := u.c.Stats()
		tl.say("%s sent %d fragments (%d again), %d ack channel packets, %d drop and %d loop cover packets; %d loops came back",
			u.name, s.FragmentsSent, s.Retransmissions, s.AckPacketsSent+s.AcksSent, s.DropsSent, s.LoopsSent, s.LoopsReturned)
	}
	tl.say("done: every step succeeded; the relays saw only fixed-size packets, at rates that did not change when anyone talked")
	return nil
}

// introduce: the mediator introduces alice and bob, who both accept.
func introduce(tl *demoTimeline, mediator, alice, bob *demoUser) error {
	if _, err := mediator.f.Intro.Introduce("alice", "bob", labelForAlice, labelForBob, "You both asked for a discreet channel."); err != nil {
		return err
	}
	for _, u := range []*demoUser{alice, bob} {
		var in intro.Info
		if err := u.await("the introduction", func() bool {
			list, _ := u.f.Intro.Introductions()
			if len(list) == 1 {
				in = list[0]
			}
			return len(list) == 1
		}); err != nil {
			return err
		}
		tl.say("%s is introduced by %s to %q (note: %q) and accepts", u.name, in.From, in.Label, in.Note)
		if err := u.f.Intro.Answer(in.ID, true); err != nil {
			return err
		}
	}
	for _, u := range []*demoUser{alice, bob} {
		if err := u.await("the introduction to complete", func() bool { list, _ := u.f.Intro.Introductions(); return list[0].State == "done" }); err != nil {
			return err
		}
	}
	tl.say("both accepted: each now holds the other's card; the mediator will see nothing of what follows")

	return nil
}

// checkInterest runs the mutual interest check and reports whether both
// said yes.
func checkInterest(o demoOptions, tl *demoTimeline, question string, alice, bob *demoUser) (bool, error) {
	answer := func(yes bool) interest.Answer {
		if yes {
			return interest.Yes
		}
		return interest.No
	}
	id, err := alice.f.Interest.Ask(labelForAlice, question, answer(o.aliceYes), o.within)
	if err != nil {
		return false, err
	}
	tl.say("alice answers %v (asking is answering)", answer(o.aliceYes))
	if err := bob.await("the question", func() bool { list, _ := bob.f.Interest.Checks(); return len(list) == 1 }); err != nil {
		return false, err
	}
	if err := bob.f.Interest.AnswerCheck(id, answer(o.bobYes)); err != nil {
		return false, err
	}
	tl.say("bob answers %v; his client sends its protocol message at the deadline whatever he chose", answer(o.bobYes))
	want := interest.NoMatch.String()
	if o.aliceYes && o.bobYes {
		want = interest.Match.String()
	}
	for _, u := range []*demoUser{alice, bob} {
		var result string
		if err := u.await("the check's result", func() bool {
			list, _ := u.f.Interest.Checks()
			result = list[0].Result
			return result != interest.Pending.String()
		}); err != nil {
			return false, err
		}
		tl.say("%s learns: %s", u.name, result)
		if result != want {
			return false, fmt.Errorf("%s learned %q, want %q", u.name, result, want)
		}
	}
	return want == interest.Match.String(), nil
}

// sendSignal: alice sends her signal, bob answers, both see them delivered.
func sendSignal(alice, bob *demoUser) error {
	if _, err := alice.c.Send(labelForAlice, client.Content{Kind: client.Text, Body: []byte("We are prepared to meet in a neutral venue next month.")}); err != nil {
		return err
	}
	if err := bob.await("the signal", func() bool { in, _ := bob.c.Inbox(); return len(in) == 2 }); err != nil {
		return err
	}
	if _, err := bob.c.Send(labelForBob, client.Content{Kind: client.Text, Body: []byte("Agreed in principle. Propose a date.")}); err != nil {
		return err
	}
	for _, u := range []*demoUser{alice, bob} {
		if err := u.await("delivery confirmations", func() bool { return settled(u.c) }); err != nil {
			return err
		}
	}
	if err := alice.await("bob's answer", func() bool { in, _ := alice.c.Inbox(); return len(in) == 1 }); err != nil {
		return err
	}
	return nil
}

// conveyWithReceipt: alice writes through the mediator, who passes it on
// to bob; alice checks the signed receipt.
func conveyWithReceipt(tl *demoTimeline, mediator, alice *demoUser) error {
	text := "Our delegation will be three people."
	cid, err := alice.f.Convey.Convey("mediator", labelForAlice, text, convey.SignedReceipt)
	if err != nil {
		return err
	}
	var entry convey.DeskEntry
	if err := mediator.await("the message on the desk", func() bool {
		desk, _ := mediator.f.Convey.Desk()
		if len(desk) == 1 {
			entry = desk[0]
		}
		return len(desk) == 1
	}); err != nil {
		return err
	}
	tl.say("the mediator's %s reads it on the desk (%q, for %q) and passes it on to bob, naming the sender %q", dutyOfficer, entry.Text, entry.To, labelForBob)
	if err := releaseByTwo(tl, mediator, &control.DeskPassRequest{ID: entry.ID, To: "bob", As: labelForBob, Note: "Passed on unchanged."}); err != nil {
		return err
	}
	if err := alice.await("the receipt", func() bool { list, _ := alice.f.Convey.Conveyances(); return list[0].State != "sent" }); err != nil {
		return err
	}
	proof, err := alice.f.Convey.Proof(cid)
	if err != nil {
		return err
	}
	if err := proof.Receipt.Verify(proof.Text, proof.Salt, mediator.c.Self().SigningKey); err != nil {
		return fmt.Errorf("the receipt does not verify: %w", err)
	}
	tl.say("alice holds a signed receipt: conveyed to %q at %s; anyone with the mediator's card can check it, given the message and its salt (the receipt alone names only a salted commitment %x…)",
		proof.Receipt.To, proof.Receipt.Time.Local().Format(time.TimeOnly), proof.Receipt.Commitment[:6])

	return nil
}

// demoClient makes a user's client and its account at the provider.
func demoClient(tn *testnet.Network, dir, name, provider, officer string, tl *demoTimeline) (*demoUser, error) {
	var p *directory.Node
	for _, n := range tn.Document.Providers() {
		if n.Name == provider {
			p = n
		}
	}
	network := client.Network{
		Authorities: tn.Authorities, Threshold: tn.Threshold, ClockSkew: time.Minute,
		Provider: client.Provider{Name: p.Name, Address: p.Address, LinkKey: p.LinkKey, Identity: [32]byte(p.IdentityKey)},
		Geometry: tn.Document.Parameters.Geometry,
	}
	c, account, err := client.Create(client.Config{
		Dir: filepath.Join(dir, name), Passphrase: []byte(name + "'s demo passphrase"), Officer: officer, Rand: rand.Reader,
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
	f, err := features.Register(c, features.Config{})
	if err != nil {
		return nil, err
	}
	return &demoUser{name: name, c: c, f: f}, nil
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
			if m.Kind != client.Text.String() {
				continue
			}
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
				if ct.Session == "established" {
					tl.say("%s: session with %s established", u.name, ct.Name)
				}
			}
		}
		if inbox, err := u.c.Inbox(); err == nil {
			for _, m := range inbox {
				if !seen[m.ID] {
					seen[m.ID] = true
					if m.Conveyed {
						tl.say("%s ← %q via %s  %q (note: %q)", u.name, m.Label, m.Contact, m.Text, m.Note)
					} else {
						tl.say("%s ← %s  %q", u.name, m.Contact, m.Text)
					}
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
