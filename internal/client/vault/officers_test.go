package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// officersVault makes a vault opened by "alice pass" with a second officer,
// "bob pass", and some entries.
func officersVault(t *testing.T) (d *Dir, path string, alice, bob SlotID, entries map[string]string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "state")
	d, err := CreateDir(path, testrand.New(1), []byte("alice pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if bob, err = d.AddOfficer(testrand.New(2), []byte("bob pass"), testParams); err != nil {
		t.Fatal(err)
	}
	entries = map[string]string{}
	for i := range 12 {
		label, value := fmt.Sprintf("entry/%02d", i), fmt.Sprintf("value %d", i)
		if err := d.Put(label, []byte(value)); err != nil {
			t.Fatal(err)
		}
		entries[label] = value
	}
	return d, path, d.Officer(), bob, entries
}

// checkEntries opens every entry of a vault and compares it.
func checkEntries(t *testing.T, d *Dir, entries map[string]string) {
	t.Helper()
	for label, value := range entries {
		if got, err := d.Get(label); err != nil || string(got) != value {
			t.Fatalf("%s: %q, %v", label, got, err)
		}
	}
}

// openEntryFiles opens every entry file on disk with a vault other than
// the directory's own and returns how many opened.
func openEntryFiles(t *testing.T, path string, v *Vault) int {
	t.Helper()
	labels, err := (&Dir{path: path}).Labels("")
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	for _, label := range labels {
		data, err := os.ReadFile((&Dir{path: path}).entryPath(label))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Open(label, data); err == nil {
			opened++
		}
	}
	return opened
}

func TestOfficerSlots(t *testing.T) {
	d, path, alice, bob, entries := officersVault(t)
	if alice == bob {
		t.Fatal("two officers share a slot ID")
	}
	if _, err := d.AddOfficer(testrand.New(3), []byte("alice pass"), testParams); !errors.Is(err, ErrPassphraseTaken) {
		t.Fatalf("a second officer with alice's passphrase: %v", err)
	}
	if err := d.ChangePassphrase(bob, []byte("alice pass"), testParams); !errors.Is(err, ErrPassphraseTaken) {
		t.Fatalf("bob taking alice's passphrase: %v", err)
	}
	for pass, want := range map[string]SlotID{"alice pass": alice, "bob pass": bob} {
		if got, err := d.CheckPassphrase(testrand.New(4), []byte(pass)); err != nil || got != want {
			t.Fatalf("CheckPassphrase(%q) = %x, %v; want %x", pass, got, err, want)
		}
	}
	if _, err := d.CheckPassphrase(testrand.New(4), []byte("carol pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("a stranger's passphrase: %v", err)
	}
	d.Close()
	d, err := OpenDir(path, testrand.New(5), []byte("bob pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Officer() != bob || len(d.Officers()) != 2 {
		t.Fatalf("opened as %x of %d officers, want bob %x of 2", d.Officer(), len(d.Officers()), bob)
	}
	checkEntries(t, d, entries)
	// Bob's passphrase change leaves alice's alone.
	if err := d.ChangePassphrase(bob, []byte("bob's new pass"), testParams); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CheckPassphrase(testrand.New(6), []byte("bob pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatal("bob's old passphrase still opens the vault")
	}
	for pass, want := range map[string]SlotID{"alice pass": alice, "bob's new pass": bob} {
		if got, err := d.CheckPassphrase(testrand.New(6), []byte(pass)); err != nil || got != want {
			t.Fatalf("CheckPassphrase(%q) = %x, %v; want %x", pass, got, err, want)
		}
	}
}

// TestRemovedOfficerOpensNothing is issue 23's "removal is real", checked
// on the state's files: after bob's removal his passphrase unlocks nothing,
// and a copy of the header taken before (his slot, with the state key of
// the time) opens none of the entries on disk; the old header's blocks
// are overwritten.
func TestRemovedOfficerOpensNothing(t *testing.T) {
	d, path, alice, bob, entries := officersVault(t)
	headerBefore, err := os.ReadFile(filepath.Join(path, headerFile))
	if err != nil {
		t.Fatal(err)
	}
	header, _ := os.Open(filepath.Join(path, headerFile))
	defer header.Close()

	// Writes go on while the removal runs.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			if err := d.Put("entry/00", []byte(fmt.Sprintf("written during the removal %d", i))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	if err := d.RemoveOfficer(bob); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	entries["entry/00"] = "written during the removal 19"
	checkEntries(t, d, entries)
	if got := d.Officers(); len(got) != 1 || got[0] != alice {
		t.Fatalf("officers after the removal: %x", got)
	}
	if err := d.RemoveOfficer(alice); !errors.Is(err, ErrLastSlot) {
		t.Fatalf("removing the last officer: %v", err)
	}
	if _, err := d.CheckPassphrase(testrand.New(7), []byte("bob pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatal("bob's passphrase still names an officer")
	}
	old, err := io.ReadAll(header)
	if err != nil || !bytes.Equal(old, make([]byte, len(old))) {
		t.Fatalf("the header with bob's slot was not overwritten (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(path, rekeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the re-key's keyring is left: %v", err)
	}
	d.Close()

	if _, err := OpenDir(path, testrand.New(8), []byte("bob pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("bob opening the state after his removal: %v", err)
	}
	k, err := ParseKeyring(headerBefore)
	if err != nil {
		t.Fatal(err)
	}
	stale, _, err := UnlockKeyring(testrand.New(9), k, []byte("bob pass"))
	if err != nil {
		t.Fatal(err)
	}
	if n := openEntryFiles(t, path, stale); n != 0 {
		t.Fatalf("bob's copy of the old header opens %d entries of the state", n)
	}
	d, err = OpenDir(path, testrand.New(10), []byte("alice pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkEntries(t, d, entries)
}

// TestRekeyCrashResumes stops a removal after the new keyring is written
// and part of the entries are sealed under the new key (a crash), then
// opens the state: bob is refused, alice's unlock finishes the move.
func TestRekeyCrashResumes(t *testing.T) {
	d, path, alice, bob, entries := officersVault(t)
	d.hmu.Lock()
	if _, err := d.startRekey(bob); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"entry/01", "entry/05"} {
		if err := d.resealEntry(label); err != nil {
			t.Fatal(err)
		}
	}
	d.hmu.Unlock()
	if err := d.Put("entry/07", []byte("written under the new key")); err != nil {
		t.Fatal(err)
	}
	entries["entry/07"] = "written under the new key"
	d.Close() // the crash

	if _, err := OpenDir(path, testrand.New(11), []byte("bob pass")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("bob opening a state whose re-key removes him: %v", err)
	}
	d, err := OpenDir(path, testrand.New(12), []byte("alice pass"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Officer() != alice || len(d.Officers()) != 1 {
		t.Fatalf("after resuming: officer %x of %x", d.Officer(), d.Officers())
	}
	checkEntries(t, d, entries)
	d.Close()
	if _, err := os.Stat(filepath.Join(path, rekeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the re-key's keyring is left: %v", err)
	}
	// Every entry is under the new key alone: a vault holding only it
	// opens them all.
	d, err = OpenDir(path, testrand.New(13), []byte("alice pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.vault.old != nil {
		t.Fatal("an old key is kept after the re-key finished")
	}
	if n := openEntryFiles(t, path, d.vault); n != len(entries) {
		t.Fatalf("%d of %d entries open under the new key", n, len(entries))
	}
}

// TestUpgradeFromOnePassphrase opens a state of the previous release (a
// version 1 header) with its passphrase: it becomes a keyring of one slot,
// and its entries stay.
func TestUpgradeFromOnePassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	v, h, err := Create(testrand.New(14), []byte("pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.MarshalBinary()
	if err := os.WriteFile(filepath.Join(path, headerFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	sealed, _ := v.Seal("identity", []byte("my keys"))
	if err := os.WriteFile((&Dir{path: path}).entryPath("identity"), sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(path, testrand.New(15), []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	d, err := OpenDir(path, testrand.New(15), []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, d, map[string]string{"identity": "my keys"})
	d.Close()
	data, _ := os.ReadFile(filepath.Join(path, headerFile))
	if k, err := ParseKeyring(data); err != nil || len(k.Slots) != 1 {
		t.Fatalf("the header after the upgrade: %v", err)
	}
	d, err = OpenDir(path, testrand.New(16), []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkEntries(t, d, map[string]string{"identity": "my keys"})
}

// FuzzParseKeyring checks that the keyring decoder fails only with
// ErrCorrupt and re-encodes what it accepts to the same bytes.
func FuzzParseKeyring(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseKeyring")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeyring(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}
