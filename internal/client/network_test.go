package client_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/clienttest"
)

// exchangeTexts has alice and bob send each other each texts, and alice
// bob a file of fileSize random bytes, which it returns, and waits until
// every message is delivered.
func exchangeTexts(t *testing.T, alice, bob *client.Client, each, fileSize int) []byte {
	t.Helper()
	file := make([]byte, fileSize)
	rand.Read(file)
	for i := range each {
		if _, err := alice.Send("bob", client.Content{Kind: client.Text, Body: []byte(fmt.Sprintf("alice to bob %d", i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Send("alice", client.Content{Kind: client.Text, Body: []byte(fmt.Sprintf("bob to alice %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Send("bob", client.Content{Kind: client.File, Name: "report.bin", Body: file}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, bob} {
		want := len(c.Outbox())
		clienttest.WaitUntil(t, c, time.Minute, "every message delivered", func() bool { return clienttest.CountStatus(c, client.Delivered) == want })
	}
	return file
}

// runningPair starts a network of params with alice at provider-a and bob
// at provider-b, contacts of each other, both running.
func runningPair(t *testing.T, params directory.Parameters) (alice, bob *client.Client) {
	t.Helper()
	n := clienttest.StartNetwork(t, params)
	alice = n.NewClient(t, "alice", "provider-a", client.Config{})
	bob = n.NewClient(t, "bob", "provider-b", client.Config{})
	clienttest.Introduce(t, alice, "alice", bob, "bob")
	clienttest.Run(t, alice)
	clienttest.Run(t, bob)
	return alice, bob
}

func TestTwoClientsExchangeMessages(t *testing.T) {
	alice, bob := runningPair(t, clienttest.FastParameters())

	const each = 10
	file := exchangeTexts(t, alice, bob, each, 10<<10)
	t.Logf("alice: %+v", alice.Stats())
	t.Logf("bob: %+v", bob.Stats())
	checkInbox(t, bob, "alice to bob", each, file)
	checkInbox(t, alice, "bob to alice", each, nil)

	// By now each has told the other what its software reads: what they
	// send carries its sending time, the sender's order.
	clienttest.WaitUntil(t, alice, time.Minute, "bob's word on what he reads", func() bool { return alice.Contacts()[0].Reads == 6 }) // this release's content version
	// It reads version 6: his acks come in his ack channel's packets now,
	// neither as replies to SURBs nor one forward packet per fragment.
	before := time.Now().Add(-time.Second)
	was := alice.Stats()
	if _, err := alice.Send("bob", client.Content{Kind: client.Text, Body: []byte("with its time")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, bob, time.Minute, "the timed message", func() bool { in, _ := bob.Inbox(); return len(in) == each+2 })
	clienttest.WaitUntil(t, alice, time.Minute, "the timed message's ack", func() bool { return clienttest.CountStatus(alice, client.Delivered) == len(alice.Outbox()) })
	if now := alice.Stats(); now.SURBAcks != was.SURBAcks || now.AckPacketsReceived == was.AckPacketsReceived {
		t.Fatalf("after bob said he reads ack batches: %d acks came as SURB replies, %d ack channel packets", now.SURBAcks-was.SURBAcks, now.AckPacketsReceived-was.AckPacketsReceived)
	}
	in, _ := bob.Inbox()
	for _, m := range in {
		if m.Text == "with its time" && (m.Sent.Before(before) || m.Sent.After(m.Time.Add(time.Second))) {
			t.Fatalf("sent %v, arrived %v", m.Sent, m.Time)
		}
	}
	if s := bob.Stats(); s.MessagesReceived != each+2 || s.Refused != 0 {
		t.Fatalf("bob counts %d messages received (%d refused), want the %d alice sent", s.MessagesReceived, s.Refused, each+2)
	}
}

// checkInbox checks that every numbered text arrived exactly once, and the
// file if one is given.
func checkInbox(t *testing.T, c *client.Client, prefix string, count int, file []byte) {
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
	n := clienttest.StartNetwork(t, clienttest.FastParameters())
	aliceCfg := client.Config{Dir: filepath.Join(t.TempDir(), "alice")}
	bobCfg := client.Config{Dir: filepath.Join(t.TempDir(), "bob")}
	alice := n.NewClient(t, "alice", "provider-a", aliceCfg)
	bob := n.NewClient(t, "bob", "provider-b", bobCfg)
	clienttest.Introduce(t, alice, "alice", bob, "bob")
	stopAlice, stopBob := clienttest.Run(t, alice), clienttest.Run(t, bob)

	const count = 20
	for i := range count {
		if _, err := alice.Send("bob", client.Content{Kind: client.Text, Body: []byte(fmt.Sprintf("alice to bob %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	clienttest.WaitUntil(t, alice, time.Minute, "some messages delivered", func() bool { return clienttest.CountStatus(alice, client.Delivered) >= 3 })
	stopAlice()
	stopBob()
	reopen := func(name string, cfg client.Config) *client.Client {
		cfg.Passphrase, cfg.Rand = []byte(name+" passphrase"), rand.Reader
		c, err := client.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clienttest.Run(t, c)
		return c
	}
	alice, bob = reopen("alice", aliceCfg), reopen("bob", bobCfg)
	if got := len(alice.Outbox()); got != count {
		t.Fatalf("alice's outbox holds %d messages after the restart, want %d", got, count)
	}
	clienttest.WaitUntil(t, alice, time.Minute, "every message delivered", func() bool { return clienttest.CountStatus(alice, client.Delivered) == count })
	checkInbox(t, bob, "alice to bob", count, nil)
}

// TestUnreachableContactFails: with the only mix of a layer down, nothing
// gets through; the sender marks the message failed at its deadline (a
// short time budget here) instead of waiting for ever, saying why.
func TestUnreachableContactFails(t *testing.T) {
	n := clienttest.StartNetwork(t, clienttest.FastParameters())
	alice := n.NewClient(t, "alice", "provider-a", client.Config{TimeBudget: 3 * time.Second})
	bob := n.NewClient(t, "bob", "provider-b", client.Config{})
	clienttest.Introduce(t, alice, "alice", bob, "bob")
	n.Stop("mix-2-a")
	clienttest.Run(t, alice)
	clienttest.Run(t, bob)
	if _, err := alice.Send("bob", client.Content{Kind: client.Text, Body: []byte("anyone there?")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, alice, time.Minute, "the message to fail", func() bool { return clienttest.CountStatus(alice, client.Failed) == 1 })
	m := alice.Outbox()[0]
	if !strings.Contains(m.Reason, "not acknowledged within 3s") {
		t.Fatalf("a failed message says %q", m.Reason)
	}
	t.Logf("failed: %s", m.Reason)
	if lost := alice.Stats().LoopsReturned; lost != 0 {
		t.Fatalf("%d loops came back through a network missing a layer", lost)
	}
}

// TestBackupAndRestore: alice loses her machine and restores from a backup
// on a fresh state directory; she and bob talk again (the sessions are set
// up again, by her at once, and bob is told), and nothing of the old state
// is needed.
func TestBackupAndRestore(t *testing.T) {
	n := clienttest.StartNetwork(t, clienttest.FastParameters())
	alice := n.NewClient(t, "alice", "provider-a", client.Config{})
	bob := n.NewClient(t, "bob", "provider-b", client.Config{})
	clienttest.Introduce(t, alice, "alice", bob, "bob")
	stopAlice := clienttest.Run(t, alice)
	clienttest.Run(t, bob)
	if _, err := alice.Send("bob", client.Content{Kind: client.Text, Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, alice, time.Minute, "the first message delivered", func() bool { return clienttest.CountStatus(alice, client.Delivered) == 1 })
	var backup bytes.Buffer
	if err := alice.Backup(&backup, []byte("backup passphrase"), clienttest.VaultParams); err != nil {
		t.Fatal(err)
	}
	stopAlice()
	// Bob writes while alice's machine is gone, in the session the backup
	// does not keep: nothing acknowledges it, and bob's waits between
	// attempts grow.
	if _, err := bob.Send("alice", client.Content{Kind: client.Text, Body: []byte("welcome back")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, bob, time.Minute, "bob's attempts", func() bool {
		out := bob.Outbox()
		return len(out) == 1 && out[0].Attempts >= 3
	})

	fresh := filepath.Join(t.TempDir(), "new-machine", "alice")
	cfg := client.Config{Dir: fresh, Passphrase: []byte("new passphrase"), VaultParams: clienttest.VaultParams, Rand: rand.Reader}
	data := backup.Bytes()
	damaged := bytes.Clone(data)
	damaged[len(damaged)-5] ^= 1
	for name, attempt := range map[string]func() error{
		"wrong passphrase": func() error { _, err := client.Restore(cfg, data, []byte("guess")); return err },
		"damaged file":     func() error { _, err := client.Restore(cfg, damaged, []byte("backup passphrase")); return err },
		"truncated file":   func() error { _, err := client.Restore(cfg, data[:40], []byte("backup passphrase")); return err },
		"not a backup":     func() error { _, err := client.Restore(cfg, []byte("hello"), []byte("backup passphrase")); return err },
	} {
		err := attempt()
		if !errors.Is(err, client.ErrBackup) {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
		if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 0 {
			t.Fatalf("%s left files behind: %v", name, entries)
		}
	}
	restored, err := client.Restore(cfg, data, []byte("backup passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Restore(cfg, data, []byte("backup passphrase")); err == nil {
		t.Fatal("restored over an existing state")
	}
	clienttest.Run(t, restored)
	if got := restored.Self(); !bytes.Equal(got.DHKey[:], alice.Self().DHKey[:]) {
		t.Fatal("the restored identity differs")
	}
	// Restored alice sets a new session up by herself; bob adopts it, and
	// his message goes again at once in the new session, whatever his wait
	// — delivered though she has not written.
	restoredAt := time.Now()
	clienttest.WaitUntil(t, bob, time.Minute, "bob's message delivered", func() bool { return clienttest.CountStatus(bob, client.Delivered) == 1 })
	t.Logf("bob's message was delivered %v after the restored client started", time.Since(restoredAt).Round(time.Millisecond))
	if _, err := restored.Send("bob", client.Content{Kind: client.Text, Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	clienttest.WaitUntil(t, restored, time.Minute, "the message after the restore delivered", func() bool { return clienttest.CountStatus(restored, client.Delivered) == 1 })
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
