package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// fixture is a trail of ten entries, a minute apart, in a fresh vault.
type fixture struct {
	dir   *vault.Dir
	path  string
	trail *Trail
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	x := &fixture{path: t.TempDir(), now: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	var err error
	if x.dir, err = vault.CreateDir(x.path, testrand.New(7), []byte("pass"), vault.Params{Time: 1, MemoryKiB: 64, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.dir.Close)
	if x.trail, err = Open(x.dir, func() time.Time { return x.now }); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		x.now = x.now.Add(time.Minute)
		if err := x.trail.Record("officer-a", "send", fmt.Sprintf("message %d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := x.trail.Verify(); err != nil || n != 10 {
		t.Fatalf("a trail of 10 entries: %d verified, %v", n, err)
	}
	return x
}

// file is the path of entry seq's file.
func (x *fixture) file(seq uint64) string {
	return filepath.Join(x.path, hex.EncodeToString([]byte(entryLabel(seq)))+".entry")
}

// stored reads entry seq as stored.
func (x *fixture) stored(t *testing.T, seq uint64) []byte {
	t.Helper()
	b, err := x.dir.Get(entryLabel(seq))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reopened verifies the trail as a new process would.
func (x *fixture) reopened(t *testing.T) error {
	t.Helper()
	tr, err := Open(x.dir, time.Now)
	if err != nil {
		return err
	}
	_, err = tr.Verify()
	return err
}

// TestAuditTrailDetectsTampering: an entry removed, two reordered, one
// altered, the end cut off, or the start cut off without a cut entry, is
// detected, whether done to the files (without the vault's key) or to the
// entries (with it, without rewriting the whole chain and its head).
func TestAuditTrailDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, x *fixture)
	}{
		{"an entry's file removed", func(t *testing.T, x *fixture) { os.Remove(x.file(4)) }},
		{"an entry removed with the key", func(t *testing.T, x *fixture) { x.dir.Delete(entryLabel(4)) }},
		{"two entries' files swapped", func(t *testing.T, x *fixture) {
			os.Rename(x.file(3), x.file(11))
			os.Rename(x.file(4), x.file(3))
			os.Rename(x.file(11), x.file(4))
		}},
		{"two entries swapped with the key", func(t *testing.T, x *fixture) {
			three, four := x.stored(t, 3), x.stored(t, 4)
			x.dir.Put(entryLabel(3), four)
			x.dir.Put(entryLabel(4), three)
		}},
		{"an entry's file altered", func(t *testing.T, x *fixture) {
			b, _ := os.ReadFile(x.file(5))
			b[len(b)/2] ^= 1
			os.WriteFile(x.file(5), b, 0o600)
		}},
		{"an entry altered with the key", func(t *testing.T, x *fixture) {
			var e Entry
			if err := e.UnmarshalBinary(x.stored(t, 5)); err != nil {
				t.Fatal(err)
			}
			e.Object = "another message"
			b, _ := e.MarshalBinary()
			x.dir.Put(entryLabel(5), b)
		}},
		{"the last entry altered with the key", func(t *testing.T, x *fixture) {
			var e Entry
			e.UnmarshalBinary(x.stored(t, 10))
			e.Officer = "officer-b"
			b, _ := e.MarshalBinary()
			x.dir.Put(entryLabel(10), b)
		}},
		{"the end cut off", func(t *testing.T, x *fixture) {
			os.Remove(x.file(10))
			os.Remove(x.file(9))
		}},
		{"the start cut off", func(t *testing.T, x *fixture) {
			os.Remove(x.file(1))
			os.Remove(x.file(2))
		}},
		{"the start cut off with the key, the head moved", func(t *testing.T, x *fixture) {
			x.dir.Delete(entryLabel(1))
			x.dir.Delete(entryLabel(2))
			h := x.trail.head
			h.first = 3
			x.dir.Put(headLabel, h.marshal())
		}},
		{"the head removed", func(t *testing.T, x *fixture) { x.dir.Delete(headLabel) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newFixture(t)
			c.tamper(t, x)
			err := x.reopened(t)
			if err == nil {
				t.Fatal("not detected")
			}
			t.Logf("detected: %v", err)
		})
	}
}

// TestAuditTrailCut: a cut removes the entries before a time from the
// start, keeps the rest verifying with the cut recorded in the chain, and
// any other removal afterwards is still detected.
func TestAuditTrailCut(t *testing.T) {
	x := newFixture(t)
	removed, err := x.trail.Cut("officer-b", time.Date(2026, 12, 6, 9, 4, 30, 0, time.UTC))
	if err != nil || removed != 4 {
		t.Fatalf("cut: %d removed, %v; want 4", removed, err)
	}
	if err := x.reopened(t); err != nil {
		t.Fatalf("after the cut: %v", err)
	}
	entries, err := x.trail.Entries()
	if err != nil || len(entries) != 7 || entries[0].Seq != 5 || entries[6].Action != CutAction || entries[6].FirstKept != 5 {
		t.Fatalf("after the cut: %d entries, %v: %+v", len(entries), err, entries)
	}
	if _, err := os.Stat(x.file(4)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("entry 4's file after the cut: %v", err)
	}
	x.now = x.now.Add(time.Minute)
	if err := x.trail.Record("officer-a", Unlock, ""); err != nil {
		t.Fatal(err)
	}
	if err := x.reopened(t); err != nil {
		t.Fatalf("an entry after the cut: %v", err)
	}
	// A crash during a second cut, after its entry and before the start
	// moved: the trail still verifies from where the first cut left it.
	x.trail.mu.Lock()
	_, err = x.trail.appendLocked(Entry{Officer: "officer-b", Action: CutAction, FirstKept: 7, CutHash: entries[2].Prev})
	x.trail.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := x.reopened(t); err != nil {
		t.Fatalf("after a cut interrupted by a crash: %v", err)
	}
	os.Remove(x.file(5))
	if err := x.reopened(t); !errors.Is(err, ErrTampered) {
		t.Fatalf("the first entry kept removed after a cut: %v", err)
	}
}

// TestEntryEncoding: entries round-trip, and decoding is strict.
func TestEntryEncoding(t *testing.T) {
	e := Entry{Seq: 7, Time: time.Date(2026, 12, 6, 9, 0, 0, 5, time.UTC), Officer: "desk officer", Action: "desk-pass", Object: "convey 0a0b", FirstKept: 3}
	e.Prev[0], e.CutHash[31] = 1, 2
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var d Entry
	if err := d.UnmarshalBinary(b); err != nil || d != e {
		t.Fatalf("round trip: %+v, %v", d, err)
	}
	for _, bad := range [][]byte{nil, {2}, b[:len(b)-1], append(append([]byte(nil), b...), 0)} {
		if err := d.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes decoded: %v", len(bad), err)
		}
	}
	if _, err := (&Entry{Object: string(make([]byte, maxField+1))}).MarshalBinary(); err == nil {
		t.Error("a field beyond maxField encoded")
	}
}

func FuzzEntry(f *testing.F) {
	e := Entry{Seq: 1, Time: time.Unix(1, 0), Officer: "a", Action: "send", Object: "b"}
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := e.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded entry does not encode: %v", err)
		}
		var d Entry
		if err := d.UnmarshalBinary(again); err != nil || d != e {
			t.Fatalf("re-decoding: %+v, %v", d, err)
		}
	})
}
