package replay

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecovery opens arbitrary bytes as a replay log, as a node does after
// a crash: a damaged log is refused with an error, never a panic; an
// accepted one has kept every whole tag it holds (each is seen again), has
// dropped a torn last record, and goes on logging.
func FuzzRecovery(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.log")
	filter, err := Open(path, 100, 1e-3, bytes.NewReader(make([]byte, keySize)))
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		filter.CheckAndAdd([TagSize]byte{byte(i + 1)})
	}
	if err := filter.Close(); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-5])  // a torn last record
	f.Add(seed[:headerSize-1]) // a torn header
	f.Add([]byte("bcreplay"))
	f.Fuzz(func(t *testing.T, log []byte) {
		if len(log) >= headerSize && binary.BigEndian.Uint64(log[len(magic)+2:]) > 1<<20 {
			return // a valid header this large would allocate up to 8 GiB: keep the fuzzer's memory small
		}
		path := filepath.Join(t.TempDir(), "replay.log")
		if err := os.WriteFile(path, log, 0o600); err != nil {
			t.Fatal(err)
		}
		filter, err := Open(path, 100, 1e-3, bytes.NewReader(make([]byte, keySize)))
		if err != nil {
			return
		}
		defer filter.Close()
		whole := (len(log) - headerSize) / TagSize
		for i := range whole {
			tag := [TagSize]byte(log[headerSize+i*TagSize:])
			if seen, err := filter.CheckAndAdd(tag); err != nil || !seen {
				t.Fatalf("tag %d of the log not seen after recovery (%v)", i, err)
			}
		}
		fresh := [TagSize]byte(bytes.Repeat([]byte{0xa5}, TagSize))
		if _, err := filter.CheckAndAdd(fresh); err != nil {
			t.Fatal(err)
		}
		if err := filter.Sync(); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if (info.Size()-int64(headerSize))%TagSize != 0 {
			t.Fatalf("the log holds %d bytes after recovery and a sync: a torn record stayed", info.Size())
		}
	})
}
