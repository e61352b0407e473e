package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/node"
	"github.com/backchannel/backchannel/internal/tools/testnet"
)

// testVaultParams make vaults cheap to open in tests.
var testVaultParams = vault.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// testNetwork is a whole network in this process: 2 providers and 3
// layers of one mix, each node on its own loopback listener.
type testNetwork struct {
	tn     *testnet.Network
	params directory.Parameters
	stops  map[string]func()
}

func fastParameters() directory.Parameters {
	p := testnet.DefaultParameters(3)
	p.MeanDelay = time.Millisecond
	p.PollInterval = 10 * time.Millisecond
	p.SendRate, p.LoopRate, p.DropRate, p.MixLoopRate = 40, 2, 2, 0
	return p
}

func startNetwork(t *testing.T, params directory.Parameters) *testNetwork {
	t.Helper()
	const providers, layers = 2, 3
	listeners := make([]net.Listener, providers+layers)
	addresses := make([]string, len(listeners))
	for i := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[i], addresses[i] = l, l.Addr().String()
	}
	tn, err := testnet.Generate(testnet.Options{
		Dir: t.TempDir(), Layers: layers, MixesPerLayer: 1, Providers: providers, Addresses: addresses,
		Parameters: params, Validity: time.Hour, Now: time.Now(), Rand: rand.Reader,
		DrainTimeout: 100 * time.Millisecond, // stopped nodes need not wait for peers that are down
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNetwork{tn: tn, params: params, stops: map[string]func(){}}
	t.Cleanup(func() {
		for _, stop := range n.stops {
			stop()
		}
	})
	for i, name := range tn.Names {
		built, _, err := node.Load(t.Context(), tn.Configs[name], listeners[i], nil, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); built.Run(ctx) }()
		n.stops[name] = sync.OnceFunc(func() { cancel(); <-done })
	}
	return n
}

// network returns the bootstrap of a client of the named provider.
func (n *testNetwork) network(provider string) Network {
	for _, node := range n.tn.Document.Nodes {
		if node.Name == provider {
			return Network{
				Authorities: n.tn.Authorities, Threshold: n.tn.Threshold, ClockSkew: time.Minute,
				Provider: Provider{Name: node.Name, Address: node.Address, LinkKey: node.LinkKey, Identity: [32]byte(node.IdentityKey)},
			}
		}
	}
	panic("no provider " + provider)
}

// newClient creates a client at the provider and registers its account.
func (n *testNetwork) newClient(t *testing.T, name, provider string, cfg Config) *Client {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), name)
	}
	cfg.Passphrase = []byte(name + " passphrase")
	cfg.VaultParams = testVaultParams
	cfg.Rand = rand.Reader
	c, account, err := Create(cfg, n.network(provider))
	if err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(filepath.Dir(n.tn.Configs[provider]), "accounts.txt")
	if err := node.AddAccount(accounts, account.LinkKey, account.Mailbox); err != nil {
		t.Fatal(err)
	}
	return c
}

// run runs the client until the test ends, or until the returned function
// stops it.
func run(t *testing.T, c *Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done; c.Close() })
	t.Cleanup(stop)
	return stop
}

// introduce makes a and b contacts of each other.
func introduce(t *testing.T, a *Client, aName string, b *Client, bName string) {
	t.Helper()
	if err := a.AddContact(bName, b.Self()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddContact(aName, a.Self()); err != nil {
		t.Fatal(err)
	}
}

// waitUntil waits for cond, checked at every change the client reports,
// for at most timeout.
func waitUntil(t *testing.T, c *Client, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; stats %+v", timeout, what, c.Stats())
		}
	}
}

func countStatus(c *Client, s Status) int {
	n := 0
	for _, m := range c.Outbox() {
		if m.Status == s {
			n++
		}
	}
	return n
}

func TestTwoClientsExchangeMessages(t *testing.T) {
	n := startNetwork(t, fastParameters())
	alice := n.newClient(t, "alice", "provider-a", Config{})
	bob := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, alice, "alice", bob, "bob")
	run(t, alice)
	run(t, bob)

	const each = 10
	file := make([]byte, 10<<10)
	rand.Read(file)
	for i := range each {
		if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte(fmt.Sprintf("alice to bob %d", i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Send("alice", Content{Kind: Text, Body: []byte(fmt.Sprintf("bob to alice %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Send("bob", Content{Kind: File, Name: "report.bin", Body: file}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, bob} {
		want := len(c.Outbox())
		waitUntil(t, c, time.Minute, "every message delivered", func() bool { return countStatus(c, Delivered) == want })
	}
	t.Logf("alice: %+v", alice.Stats())
	t.Logf("bob: %+v", bob.Stats())
	checkInbox(t, bob, "alice to bob", each, file)
	checkInbox(t, alice, "bob to alice", each, nil)
}

// checkInbox checks that every numbered text arrived exactly once, and the
// file if one is given.
func checkInbox(t *testing.T, c *Client, prefix string, count int, file []byte) {
	t.Helper()
	inbox, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	files := 0
	for _, m := range inbox {
		if m.Kind == "file" {
			content, err := c.Received(m.ID)
			if err != nil || string(content.Body) != string(file) {
				t.Fatalf("the file arrived damaged (%v)", err)
			}
			files++
			continue
		}
		seen[m.Text]++
	}
	for i := range count {
		if text := fmt.Sprintf("%s %d", prefix, i); seen[text] != 1 {
			t.Fatalf("%q arrived %d times", text, seen[text])
		}
	}
	if want := map[bool]int{true: 1, false: 0}[file != nil]; files != want || len(inbox) != count+want {
		t.Fatalf("inbox holds %d messages (%d files), want %d", len(inbox), files, count+want)
	}
}

// TestMessagesSurviveRestarts stops and reopens both clients while
// messages are on their way: every message is still delivered exactly once.
func TestMessagesSurviveRestarts(t *testing.T) {
	n := startNetwork(t, fastParameters())
	aliceCfg := Config{Dir: filepath.Join(t.TempDir(), "alice")}
	bobCfg := Config{Dir: filepath.Join(t.TempDir(), "bob")}
	alice := n.newClient(t, "alice", "provider-a", aliceCfg)
	bob := n.newClient(t, "bob", "provider-b", bobCfg)
	introduce(t, alice, "alice", bob, "bob")
	stopAlice, stopBob := run(t, alice), run(t, bob)

	const count = 20
	for i := range count {
		if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte(fmt.Sprintf("alice to bob %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, alice, time.Minute, "some messages delivered", func() bool { return countStatus(alice, Delivered) >= 3 })
	stopAlice()
	stopBob()
	reopen := func(name string, cfg Config) *Client {
		cfg.Passphrase, cfg.Rand = []byte(name+" passphrase"), rand.Reader
		c, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		return c
	}
	alice, bob = reopen("alice", aliceCfg), reopen("bob", bobCfg)
	if got := len(alice.Outbox()); got != count {
		t.Fatalf("alice's outbox holds %d messages after the restart, want %d", got, count)
	}
	waitUntil(t, alice, time.Minute, "every message delivered", func() bool { return countStatus(alice, Delivered) == count })
	checkInbox(t, bob, "alice to bob", count, nil)
}

// TestUnreachableContactFails: with the only mix of a layer down, nothing
// gets through; the sender marks the message failed after its attempts
// instead of waiting for ever.
func TestUnreachableContactFails(t *testing.T) {
	n := startNetwork(t, fastParameters())
	alice := n.newClient(t, "alice", "provider-a", Config{MaxAttempts: 3})
	bob := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, alice, "alice", bob, "bob")
	n.stops["mix-2-a"]()
	run(t, alice)
	run(t, bob)
	if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte("anyone there?")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, alice, time.Minute, "the message to fail", func() bool { return countStatus(alice, Failed) == 1 })
	m := alice.Outbox()[0]
	if m.Reason == "" {
		t.Fatal("a failed message with no reason")
	}
	t.Logf("failed: %s", m.Reason)
	if lost := alice.Stats().LoopsReturned; lost != 0 {
		t.Fatalf("%d loops came back through a network missing a layer", lost)
	}
}

// TestBackupAndRestore: alice loses her machine and restores from a backup
// on a fresh state directory; she and bob talk again (the sessions are set
// up again, and bob is told), and nothing of the old state is needed.
func TestBackupAndRestore(t *testing.T) {
	n := startNetwork(t, fastParameters())
	alice := n.newClient(t, "alice", "provider-a", Config{})
	bob := n.newClient(t, "bob", "provider-b", Config{})
	introduce(t, alice, "alice", bob, "bob")
	stopAlice := run(t, alice)
	run(t, bob)
	if _, err := alice.Send("bob", Content{Kind: Text, Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, alice, time.Minute, "the first message delivered", func() bool { return countStatus(alice, Delivered) == 1 })
	var backup bytes.Buffer
	if err := alice.Backup(&backup, []byte("backup passphrase"), testVaultParams); err != nil {
		t.Fatal(err)
	}
	stopAlice()

	fresh := filepath.Join(t.TempDir(), "new-machine", "alice")
	cfg := Config{Dir: fresh, Passphrase: []byte("new passphrase"), VaultParams: testVaultParams, Rand: rand.Reader}
	data := backup.Bytes()
	damaged := bytes.Clone(data)
	damaged[len(damaged)-5] ^= 1
	for name, attempt := range map[string]func() error{
		"wrong passphrase": func() error { _, err := Restore(cfg, data, []byte("guess")); return err },
		"damaged file":     func() error { _, err := Restore(cfg, damaged, []byte("backup passphrase")); return err },
		"truncated file":   func() error { _, err := Restore(cfg, data[:40], []byte("backup passphrase")); return err },
		"not a backup":     func() error { _, err := Restore(cfg, []byte("hello"), []byte("backup passphrase")); return err },
	} {
		err := attempt()
		if !errors.Is(err, ErrBackup) {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
		if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 0 {
			t.Fatalf("%s left files behind: %v", name, entries)
		}
	}
	restored, err := Restore(cfg, data, []byte("backup passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(cfg, data, []byte("backup passphrase")); err == nil {
		t.Fatal("restored over an existing state")
	}
	run(t, restored)
	if got := restored.Self(); !bytes.Equal(got.DHKey[:], alice.Self().DHKey[:]) {
		t.Fatal("the restored identity differs")
	}
	if _, err := restored.Send("bob", Content{Kind: Text, Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send("alice", Content{Kind: Text, Body: []byte("welcome back")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, restored, time.Minute, "the message after the restore delivered", func() bool { return countStatus(restored, Delivered) == 1 })
	waitUntil(t, bob, time.Minute, "bob's answer delivered", func() bool { return countStatus(bob, Delivered) == 1 })
	inbox, _ := restored.Inbox()
	if len(inbox) != 1 || inbox[0].Text != "welcome back" {
		t.Fatalf("restored alice's inbox: %+v", inbox)
	}
	contacts := bob.Contacts()
	if contacts[0].Notice == "" {
		t.Fatal("bob was not told that alice set the session up again")
	}
	t.Logf("bob is told: %s", contacts[0].Notice)
}
