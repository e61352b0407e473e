package vault

import (
	"bytes"
	"errors"

	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// testParams are cheap Argon2id parameters, so tests stay fast.
var testParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestSealOpen(t *testing.T) {
	v, h, err := Create(testrand.New(1), []byte("correct horse"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := v.Seal("ratchet/alice", []byte("state bytes"))
	if err != nil {
		t.Fatal(err)
	}
	encoded, _ := h.MarshalBinary()
	parsed, err := ParseHeader(encoded)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := parsed.MarshalBinary()
	if !bytes.Equal(again, encoded) {
		t.Fatal("header re-encodes differently")
	}
	if _, err := Unlock(testrand.New(2), parsed, []byte("wrong horse")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	u, err := Unlock(testrand.New(2), parsed, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := u.Open("ratchet/alice", entry); err != nil || string(got) != "state bytes" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if _, err := u.Open("ratchet/bob", entry); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("entry under another label: %v", err)
	}
	// A wiped vault opens nothing.
	u.Wipe()
	if _, err := u.Open("ratchet/alice", entry); !errors.Is(err, ErrWiped) {
		t.Fatal("a wiped vault still opens entries")
	}
}

// TestCorruption flips every byte of a header and an entry: each gives a
// clear error, never a wrong result.
func TestCorruption(t *testing.T) {
	v, h, err := Create(testrand.New(4), []byte("pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	encoded, _ := h.MarshalBinary()
	for i := range encoded {
		bad := bytes.Clone(encoded)
		bad[i] ^= 0x01
		parsed, err := ParseHeader(bad)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("header byte %d: %v", i, err)
			}
			continue
		}
		if _, err := Unlock(testrand.New(5), parsed, []byte("pass")); !errors.Is(err, ErrPassphrase) {
			t.Fatalf("header byte %d changed, still unlocks: %v", i, err)
		}
	}
	entry, _ := v.Seal("contacts", []byte("bob, carol"))
	for i := range entry {
		bad := bytes.Clone(entry)
		bad[i] ^= 0x01
		if _, err := v.Open("contacts", bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("entry byte %d: %v", i, err)
		}
	}
	for _, n := range []int{0, 8, 40} {
		if _, err := v.Open("contacts", entry[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("entry of %d bytes: %v", n, err)
		}
	}
}

// FuzzParseHeader checks that the header decoder fails only with ErrCorrupt
// and re-encodes what it accepts to the same bytes.
func FuzzParseHeader(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseHeader")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		again, _ := h.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// FuzzOpen feeds arbitrary entries to Open: only ErrCorrupt, never a
// plaintext for bytes the vault did not seal.
func FuzzOpen(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzOpen")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	v, _, err := Create(testrand.New(6), []byte("pass"), testParams)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := v.Open("x", b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("an unsealed entry opened (or odd error %v)", err)
		}
	})
}
