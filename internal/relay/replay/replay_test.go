package replay

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

func randomTag(rng *rand.Rand) (t [TagSize]byte) {
	testrand.Reader{Rand: rng}.Read(t[:])
	return t
}

func openTest(t *testing.T, path string, expected uint64) *Filter {
	t.Helper()
	f, err := Open(path, expected, 1e-6, testrand.New(1))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSeenAfterRestart checks that tags added and synced are refused after
// the filter is closed and reopened, and new tags are not.
func TestSeenAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "epoch-7.replay")
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	f := openTest(t, path, 10000)
	tags := make([][TagSize]byte, 1000)
	for i := range tags {
		tags[i] = randomTag(rng)
		seen, err := f.CheckAndAdd(tags[i])
		if err != nil || seen {
			t.Fatalf("new tag %d: seen %v, %v", i, seen, err)
		}
		if seen, _ := f.CheckAndAdd(tags[i]); !seen {
			t.Fatalf("tag %d not seen right after adding it", i)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: no Close, the file handle is simply dropped.
	f.file.Close()

	g := openTest(t, path, 10000)
	defer g.Close()
	if g.Count() != uint64(len(tags)) {
		t.Fatalf("reopened filter has %d tags, want %d", g.Count(), len(tags))
	}
	for i, tag := range tags {
		if seen, err := g.CheckAndAdd(tag); err != nil || !seen {
			t.Fatalf("tag %d accepted again after restart: %v", i, err)
		}
	}
	for i := range 1000 {
		if seen, _ := g.CheckAndAdd(randomTag(rng)); seen {
			t.Fatalf("fresh tag %d taken for a replay (rate %g)", i, g.FalsePositiveRate())
		}
	}
}

// TestTornRecord checks that a partial last record is dropped on open and the
// log stays appendable.
func TestTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "torn.replay")
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	f := openTest(t, path, 100)
	a, b := randomTag(rng), randomTag(rng)
	f.CheckAndAdd(a)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	file.Write(b[:13])
	file.Close()

	g := openTest(t, path, 100)
	if g.Count() != 1 {
		t.Fatalf("%d tags after a torn record, want 1", g.Count())
	}
	if seen, _ := g.CheckAndAdd(b); seen {
		t.Fatal("the torn tag counts as seen")
	}
	g.Close()
	h := openTest(t, path, 100)
	defer h.Close()
	for _, tag := range [][TagSize]byte{a, b} {
		if seen, _ := h.CheckAndAdd(tag); !seen {
			t.Fatal("a tag logged after the torn record was lost")
		}
	}
}

// TestFalsePositiveRate checks the sizing: at the expected count the measured
// rate of fresh tags taken for replays is near the configured one.
func TestFalsePositiveRate(t *testing.T) {
	const n = 20000
	f, err := Open(filepath.Join(t.TempDir(), "fp.replay"), n, 0.01, testrand.New(4))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewChaCha8([32]byte{5}))
	for range n {
		f.CheckAndAdd(randomTag(rng))
	}
	falsePositives := 0
	const trials = 20000
	for range trials {
		tag := randomTag(rng)
		f.mu.Lock()
		seen := f.contains(&tag)
		f.mu.Unlock()
		if seen {
			falsePositives++
		}
	}
	rate := float64(falsePositives) / trials
	if rate > 0.02 || rate < 0.004 {
		t.Fatalf("false-positive rate %g at the expected count, configured 0.01", rate)
	}
	if est := f.FalsePositiveRate(); est > 0.015 || est < 0.005 {
		t.Fatalf("estimated rate %g, configured 0.01", est)
	}
}

// TestRefusesBadLogs checks that a file that is not a replay log, or has
// another version, is refused with a clear error.
func TestRefusesBadLogs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"foreign":  bytes.Repeat([]byte("x"), 100),
		"version":  append([]byte(magic), 2, 10, 0, 0, 0, 0, 0, 0, 4, 0),
		"short":    []byte(magic),
		"zerohash": append(append([]byte(magic), 1, 0, 0, 0, 0, 0, 0, 0, 4, 0), make([]byte, 32)...),
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, content, 0o600)
		if _, err := Open(path, 100, 0.01, testrand.New()); err == nil {
			t.Errorf("%s: opened a bad log", name)
		}
	}
	if _, err := Open(filepath.Join(dir, "p"), 100, 1.5, nil); err == nil {
		t.Error("accepted a false-positive rate of 1.5")
	}
}

// TestRemove checks that Remove deletes the log and that a closed filter
// says so.
func TestRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.replay")
	f := openTest(t, path, 100)
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("log still there: %v", err)
	}
	if _, err := f.CheckAndAdd([TagSize]byte{}); err != ErrClosed {
		t.Fatalf("CheckAndAdd after Remove: %v, want ErrClosed", err)
	}
}

func TestSize(t *testing.T) {
	bits, hashes := Size(1_000_000, 1e-6)
	// About 28.76 bits and 20 hashes per element at 1e-6.
	if bits < 28_700_000 || bits > 28_800_000 || hashes != 20 {
		t.Fatalf("Size(1e6, 1e-6) = %d bits, %d hashes", bits, hashes)
	}
}

func BenchmarkCheckAndAdd(b *testing.B) {
	f, err := Open(filepath.Join(b.TempDir(), "bench.replay"), 10_000_000, 1e-6, testrand.New())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewChaCha8([32]byte{6}))
	for b.Loop() {
		if _, err := f.CheckAndAdd(randomTag(rng)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReserveIsNotDurable checks that a reserved tag is refused at once but
// forgotten by a restart unless it was recorded.
func TestReserveIsNotDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reserve.replay")
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	f := openTest(t, path, 100)
	reserved, recorded := randomTag(rng), randomTag(rng)
	for _, tag := range [][TagSize]byte{reserved, recorded} {
		if seen, err := f.Reserve(tag); seen || err != nil {
			t.Fatal(seen, err)
		}
		if seen, _ := f.Reserve(tag); !seen {
			t.Fatal("a reserved tag was not refused")
		}
	}
	if err := f.Record(recorded); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g := openTest(t, path, 100)
	defer g.Close()
	if seen, _ := g.Reserve(reserved); seen {
		t.Fatal("an unrecorded reservation survived a restart")
	}
	if seen, _ := g.Reserve(recorded); !seen {
		t.Fatal("a recorded tag was forgotten")
	}
}

// TestFullDiskThenSpace: the log's file system fills up (a tmpfs of the
// test's own; it needs root). Sync fails, saying why, and keeps the tags;
// once space returns Sync writes them — also the part of a record that a
// write cut short — and after a crash every tag is there, in line.
func TestFullDiskThenSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "epoch-1.replay")
	f := openTest(t, path, 10000)
	rng := rand.New(rand.NewChaCha8([32]byte{5}))
	var tags [][TagSize]byte
	add := func(n int) {
		for range n {
			tag := randomTag(rng)
			if seen, err := f.CheckAndAdd(tag); err != nil || seen {
				t.Fatalf("a new tag: seen %v, %v", seen, err)
			}
			tags = append(tags, tag)
		}
	}
	add(10)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}

	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 512)); err != nil {
			break
		}
	}
	filler.Close()
	add(300) // more than the log file's last page holds
	err = f.Sync()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync on a full disk: %v, want ENOSPC", err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync once space returned: %v", err)
	}
	add(10)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.file.Close() // a crash: no Close
	g := openTest(t, path, 10000)
	defer g.Close()
	if g.Count() != uint64(len(tags)) {
		t.Fatalf("the reopened log has %d tags, want %d", g.Count(), len(tags))
	}
	for i, tag := range tags {
		if seen, err := g.CheckAndAdd(tag); err != nil || !seen {
			t.Fatalf("tag %d was lost to the full disk: %v", i, err)
		}
	}
}
