package vault

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestDir stores identity, contact and ratchet entries, survives a
// passphrase change, keeps the other entries when one file is damaged, and
// reads nothing after a wipe.
func TestDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	d, err := CreateDir(path, testrand.New(1), []byte("pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{"identity": "my keys", "contact/bob": "bob's card", "ratchet/bob": "ratchet state"}
	for label, value := range entries {
		if err := d.Put(label, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := CreateDir(path, testrand.New(2), []byte("x"), testParams); err == nil {
		t.Fatal("created a second vault over the first")
	}
	if err := d.ChangePassphrase(d.Officer(), []byte("new pass"), testParams); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := OpenDir(path, testrand.New(3), []byte("pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("old passphrase: %v", err)
	}
	d, err = OpenDir(path, testrand.New(3), []byte("new pass"))
	if err != nil {
		t.Fatal(err)
	}
	for label, value := range entries {
		if got, err := d.Get(label); err != nil || string(got) != value {
			t.Fatalf("%s: %q, %v", label, got, err)
		}
	}
	if labels, err := d.Labels("contact/"); err != nil || len(labels) != 1 || labels[0] != "contact/bob" {
		t.Fatalf("Labels(contact/) = %q, %v", labels, err)
	}
	if labels, _ := d.Labels(""); len(labels) != len(entries) {
		t.Fatalf("Labels() = %q", labels)
	}
	// Damage one entry's file: that entry fails clearly, the others stay.
	p := d.entryPath("ratchet/bob")
	data, _ := os.ReadFile(p)
	data[len(data)-1] ^= 1
	os.WriteFile(p, data, 0o600)
	if _, err := d.Get("ratchet/bob"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged entry: %v", err)
	}
	if got, err := d.Get("identity"); err != nil || string(got) != "my keys" {
		t.Fatal("a damaged entry took another with it")
	}
	if _, err := d.Get("contact/carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	// While it is open, no other opening (another process's) gets in.
	if _, err := OpenDir(path, testrand.New(4), []byte("new pass")); !errors.Is(err, ErrInUse) {
		t.Fatalf("a second opening: %v", err)
	}
	if err := CheckFree(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("CheckFree while open: %v", err)
	}
	if err := WipeFiles(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("WipeFiles under an open vault: %v", err)
	}
	d.Close()
	if err := CheckFree(path); err != nil {
		t.Fatalf("CheckFree after Close: %v", err)
	}
	// A damaged header is a clear error.
	hp := filepath.Join(path, headerFile)
	header, _ := os.ReadFile(hp)
	os.WriteFile(hp, header[:10], 0o600)
	if _, err := OpenDir(path, testrand.New(4), []byte("new pass")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged header: %v", err)
	}
	os.WriteFile(hp, header, 0o600)
	if d, err = OpenDir(path, testrand.New(4), []byte("new pass")); err != nil {
		t.Fatal(err)
	}
	// Wipe: nothing opens any more.
	if err := d.Wipe(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(path, testrand.New(5), []byte("new pass")); err == nil {
		t.Fatal("the vault opened after a wipe")
	}
	if _, err := d.Get("identity"); err == nil {
		t.Fatal("an entry opened after a wipe")
	}
	if left, _ := os.ReadDir(path); len(left) != 0 {
		t.Fatalf("files left after a wipe: %v", left)
	}
}

// TestOverwrites checks that deleting an entry, replacing one and changing
// the passphrase overwrite the old bytes in place: a file descriptor opened on the old
// file (the same inode, so the same blocks) reads zeros afterwards.
func TestOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	d, err := CreateDir(path, testrand.New(1), []byte("pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("secret", []byte("a message that must disappear")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put("ratchet", []byte("old chain keys")); err != nil {
		t.Fatal(err)
	}
	entry, _ := os.Open(d.entryPath("secret"))
	defer entry.Close()
	ratchet, _ := os.Open(d.entryPath("ratchet"))
	defer ratchet.Close()
	if err := d.Put("ratchet", []byte("new chain keys")); err != nil {
		t.Fatal(err)
	}
	header, _ := os.Open(filepath.Join(path, headerFile))
	defer header.Close()
	if err := d.Delete("secret"); err != nil {
		t.Fatal(err)
	}
	if err := d.ChangePassphrase(d.Officer(), []byte("new"), testParams); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*os.File{"deleted entry": entry, "old header": header, "replaced entry": ratchet} {
		b, err := io.ReadAll(f)
		if err != nil || len(b) == 0 || !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatalf("the %s was not overwritten (%d bytes, %v)", name, len(b), err)
		}
	}
}
