package control

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"reflect"
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
	if err := Call(path, &ContactAddRequest{Name: "bob", Card: string(card)}, nil); err != nil {
		t.Fatal(err)
	}
	var contacts ContactsResponse
	if err := Call(path, &ContactListRequest{}, &contacts); err != nil || len(contacts.Contacts) != 1 || contacts.Contacts[0].Name != "bob" {
		t.Fatalf("contacts %+v, %v", contacts, err)
	}
	var sent IDResponse
	if err := Call(path, &SendRequest{To: "bob", Text: "hello"}, &sent); err != nil || len(sent.ID) != 32 {
		t.Fatalf("send: %+v %v", sent, err)
	}
	if err := Call(path, &SendRequest{To: "carol", Text: "hello"}, nil); err == nil || !strings.Contains(err.Error(), "no such contact") {
		t.Fatalf("send to a stranger: %v", err)
	}
	var status StatusResponse
	if err := Call(path, &StatusRequest{}, &status); err != nil || len(status.Messages) != 1 || status.Messages[0].Status != client.Queued || status.Stats == nil {
		t.Fatalf("status %+v, %v", status, err)
	}
	// Nothing runs the schedule here: the message stays queued, and a
	// wait says so when it runs out.
	if err := Call(path, &WaitRequest{Until: "settled", Timeout: 50 * time.Millisecond}, nil); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("wait: %v", err)
	}
	backup := filepath.Join(t.TempDir(), "alice.backup")
	if err := Call(path, &BackupRequest{Path: backup, Passphrase: "b"}, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(backup); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	if err := Call(path, &BackupRequest{Path: "relative", Passphrase: "b"}, nil); err == nil {
		t.Fatal("wrote a backup to a relative path")
	}
}

func TestParseRequest(t *testing.T) {
	good := `{"version":2,"op":"send","args":{"to":"bob","text":"hi"}}`
	r, err := ParseRequest([]byte(good))
	if err != nil || !reflect.DeepEqual(r, &SendRequest{To: "bob", Text: "hi"}) {
		t.Fatalf("%+v %v", r, err)
	}
	for name, data := range map[string]string{
		"not json":        "hello",
		"version":         `{"version":1,"op":"card"}`,
		"unknown field":   `{"version":2,"op":"card","colour":"red"}`,
		"unknown arg":     `{"version":2,"op":"send","args":{"to":"bob","text":"x","label":"y"}}`,
		"another's arg":   `{"version":2,"op":"convey","args":{"name":"bob","text":"x"}}`,
		"unknown op":      `{"version":2,"op":"launch"}`,
		"send nothing":    `{"version":2,"op":"send","args":{"to":"bob"}}`,
		"send both":       `{"version":2,"op":"send","args":{"to":"bob","text":"x","file":{"name":"a","data":""}}}`,
		"wait forever":    `{"version":2,"op":"wait","args":{"until":"settled","timeout":0}}`,
		"two requests":    `{"version":2,"op":"card"}{"version":2,"op":"card"}`,
		"args not object": `{"version":2,"op":"send","args":[1]}`,
		"too large":       `{"version":2,"op":"send","args":{"to":"bob","text":"` + strings.Repeat("a", MaxRequestSize) + `"}}`,
	} {
		if _, err := ParseRequest([]byte(data)); !errors.Is(err, ErrRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCommands checks the table: every operation once, each request type
// naming its own operation and round-tripping through Marshal and
// ParseRequest, each command line once.
func TestCommands(t *testing.T) {
	ops, clis := map[string]bool{}, map[string]bool{}
	for _, c := range Commands {
		op := c.Op()
		if ops[op] {
			t.Errorf("operation %q listed twice", op)
		}
		ops[op] = true
		if c.CLI != "" {
			if clis[c.CLI] {
				t.Errorf("command line %q asks two operations", c.CLI)
			}
			clis[c.CLI] = true
		}
		if c.Summary == "" {
			t.Errorf("%s has no summary", op)
		}
		if reflect.TypeOf(c.New()) == reflect.TypeOf(Commands[0].New()) && op != Commands[0].Op() {
			t.Errorf("%s shares its request type", op)
		}
	}
	for _, c := range Commands {
		if _, err := ParseRequest(mustMarshal(t, c.New())); err != nil && !strings.Contains(err.Error(), "needs") {
			t.Errorf("%s: an empty request does not decode: %v", c.Op(), err)
		}
	}
}

func mustMarshal(t *testing.T, r Request) []byte {
	t.Helper()
	b, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"version":2,"op":"send","args":{"to":"bob","text":"hi"}}`))
	f.Add([]byte(`{"version":2,"op":"send","args":{"to":"bob","file":{"name":"a.txt","data":"aGk="}}}`))
	f.Add([]byte(`{"version":2,"op":"wait","args":{"until":"received","count":3,"timeout":1000000}}`))
	f.Add([]byte(`{"version":2,"op":"backup","args":{"path":"/tmp/x","passphrase":"p"}}`))
	f.Add([]byte(`{"version":2,"op":"desk-pass","args":{"id":"00","to":"bob","as":"a party"}}`))
	f.Add([]byte(`{"version":2,"op":"officer-login","args":{"passphrase":"p"}}`))
	f.Add([]byte(`{"version":2,"op":"officer-add","args":{"name":"clerk","passphrase":"p","roles":["reader","drafter"]},"token":"00ff"}`))
	f.Add([]byte(`{"version":2,"op":"approve","args":{"id":"00","mac":"ab"},"token":"t"}`))
	f.Add([]byte(`{"version":2,"op":"dual-control","args":{"on":true,"contact":"bob"}}`))
	f.Add([]byte(`{"version":2,"op":"audit-cut","args":{"before":"2026-12-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, token, err := parseEnvelope(data)
		if err != nil {
			return
		}
		if err := r.Check(); err != nil {
			t.Fatalf("accepted a request that fails its check: %v", err)
		}
		encoded, err := marshalAs(r, token)
		if err != nil {
			t.Fatal(err)
		}
		again, againToken, err := parseEnvelope(encoded)
		if err != nil || !reflect.DeepEqual(again, r) || againToken != token {
			t.Fatalf("a request does not survive encoding: %+v, %v", again, err)
		}
	})
}
