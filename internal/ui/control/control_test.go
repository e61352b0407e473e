package control

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var testParams = vault.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func newClient(t *testing.T, name string) *client.Client {
	t.Helper()
	c, _, err := client.Create(client.Config{
		Dir: filepath.Join(t.TempDir(), name), Passphrase: []byte("x"), VaultParams: testParams, Rand: testrand.New(name[0]),
	}, client.Network{Authorities: []ed25519.PublicKey{make([]byte, 32)}, Threshold: 1, Provider: client.Provider{Name: "p", Address: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// serve runs a server for c on a socket in a fresh directory.
func serve(t *testing.T, c *client.Client) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Server{Client: c, BackupParams: testParams}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func TestSocket(t *testing.T) {
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	path := serve(t, alice)
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v)", info.Mode(), err)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("a second daemon took the socket of a running one")
	}
	card, err := bob.Self().MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Call(path, &Request{Op: OpContactAdd, Name: "bob", Card: string(card)}); err != nil {
		t.Fatal(err)
	}
	resp, err := Call(path, &Request{Op: OpContactList})
	if err != nil || len(resp.Contacts) != 1 || resp.Contacts[0].Name != "bob" {
		t.Fatalf("contacts %+v, %v", resp, err)
	}
	if _, err := Call(path, &Request{Op: OpSend, Name: "bob", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Call(path, &Request{Op: OpSend, Name: "carol", Text: "hello"}); err == nil || !strings.Contains(err.Error(), "no such contact") {
		t.Fatalf("send to a stranger: %v", err)
	}
	resp, err = Call(path, &Request{Op: OpStatus})
	if err != nil || len(resp.Messages) != 1 || resp.Messages[0].Status != client.Queued {
		t.Fatalf("status %+v, %v", resp, err)
	}
	// Nothing runs the schedule here: the message stays queued, and a
	// wait says so when it runs out.
	if _, err := Call(path, &Request{Op: OpWait, Until: "settled", Timeout: 50 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("wait: %v", err)
	}
	backup := filepath.Join(t.TempDir(), "alice.backup")
	if _, err := Call(path, &Request{Op: OpBackup, Path: backup, Passphrase: "b"}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(backup); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	if _, err := Call(path, &Request{Op: OpBackup, Path: "relative", Passphrase: "b"}); err == nil {
		t.Fatal("wrote a backup to a relative path")
	}
	if _, err := Call(path, &Request{Op: "launch"}); !strings.Contains(err.Error(), "unknown operation") {
		t.Fatalf("unknown op: %v", err)
	}
}

func TestParseRequest(t *testing.T) {
	good := `{"version":1,"op":"send","name":"bob","text":"hi"}`
	if r, err := ParseRequest([]byte(good)); err != nil || r.Text != "hi" {
		t.Fatalf("%+v %v", r, err)
	}
	for name, data := range map[string]string{
		"not json":      "hello",
		"version":       `{"version":2,"op":"card"}`,
		"unknown field": `{"version":1,"op":"card","colour":"red"}`,
		"unknown op":    `{"version":1,"op":"launch"}`,
		"send nothing":  `{"version":1,"op":"send","name":"bob"}`,
		"send both":     `{"version":1,"op":"send","name":"bob","text":"x","file":{"name":"a","data":""}}`,
		"wait forever":  `{"version":1,"op":"wait","until":"settled","timeout":0}`,
		"two requests":  `{"version":1,"op":"card"}{"version":1,"op":"card"}`,
		"too large":     `{"version":1,"op":"send","name":"bob","text":"` + strings.Repeat("a", MaxRequestSize) + `"}`,
	} {
		if _, err := ParseRequest([]byte(data)); !errors.Is(err, ErrRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"version":1,"op":"send","name":"bob","text":"hi"}`))
	f.Add([]byte(`{"version":1,"op":"send","name":"bob","file":{"name":"a.txt","data":"aGk="}}`))
	f.Add([]byte(`{"version":1,"op":"wait","until":"received","count":3,"timeout":1000000}`))
	f.Add([]byte(`{"version":1,"op":"backup","path":"/tmp/x","passphrase":"p"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err == nil && r.Version != Version {
			t.Fatalf("accepted version %d", r.Version)
		}
	})
}
