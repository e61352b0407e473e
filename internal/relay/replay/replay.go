// Package replay is a mix node's memory of the Sphinx packets it has already
// processed under one epoch key, so that a replayed packet (which would let an
// observer follow it through the node by its repeated output) is dropped.
//
// A [Filter] is a Bloom filter over the packets' replay tags (SHA-512/256 of
// alpha, see package sphinx): its memory is fixed when it is created, sized for
// the traffic the epoch is expected to carry and a chosen false-positive rate.
// Bit positions come from keyed BLAKE2b of the tag under a random per-filter
// key, so a sender cannot grind packets that fill chosen bits.
//
// Every new tag is also appended to a log file, and [Filter.Sync] makes the
// log durable: a node that syncs before it forwards the packets it has
// checked still refuses their replays after a crash and restart, when [Open]
// rebuilds the filter from the log.
//
// A false positive drops a packet that was not a replay; end-to-end
// retransmission recovers it. Traffic beyond the expected count raises the
// false-positive rate ([Filter.FalsePositiveRate] reports the current one);
// it never lets a replay through.
//
// It is not a general-purpose set, and it knows nothing of epochs: the node
// keeps one Filter per epoch key and removes it ([Filter.Remove]) when it
// erases the key.
package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// TagSize is the length of a replay tag.
const TagSize = 32

// Log file layout, version 1:
//
//	magic "bcreplay" | version uint8 | hashes uint8 | bits uint64 | key [32]byte
//	then one 32-byte tag per record.
const (
	magic         = "bcreplay"
	formatVersion = 1
	headerSize    = len(magic) + 1 + 1 + 8 + keySize
	keySize       = 32
	maxBits       = 1 << 36 // 8 GiB of filter: refuse larger headers as corrupt
	maxHashes     = 64
)

// logBufferSize is the log's write buffer: large enough that tags reach the
// file only in Sync (32,768 tags between two syncs would be a very long
// batch). A write to the file while another goroutine's fsync holds the
// file's inode would block every check waiting for the filter's lock.
const logBufferSize = 1 << 20

// Filter is a persisted Bloom filter of replay tags. It is safe for
// concurrent use.
type Filter struct {
	path   string
	hashes int
	nbits  uint64
	key    [keySize]byte

	syncMu sync.Mutex // serializes Sync and Close

	mu    sync.Mutex
	bits  []uint64 // guarded by mu
	count uint64   // tags added, guarded by mu
	file  *os.File // nil once closed (under mu and syncMu)
	// pending holds whole records not yet written; end is the log's
	// length up to its last whole record, where they go. A failed write
	// (a full disk) keeps them for the next Sync, and its torn part is
	// written over then: the log never holds a record out of line.
	pending  []byte // guarded by mu
	end      int64  // guarded by mu
	unsynced bool   // guarded by mu
}

// Open opens the filter whose log is at path, rebuilding it from the tags the
// log holds, or creates one sized for expected tags at the false-positive
// rate falsePositive (for example 1e-6), with a key read from rand. An
// existing log keeps the size and key it was created with. A torn last record
// (a crash in the middle of a write) is discarded.
func Open(path string, expected uint64, falsePositive float64, rand io.Reader) (*Filter, error) {
	if expected == 0 || !(falsePositive > 0 && falsePositive < 1) {
		return nil, fmt.Errorf("replay: want expected > 0 and 0 < false-positive rate < 1, got %d and %g", expected, falsePositive)
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: failed to open %s: %w", path, err)
	}
	f := &Filter{path: path, file: file}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("replay: failed to stat %s: %w", path, err)
	}
	if info.Size() == 0 {
		err = f.create(expected, falsePositive, rand)
	} else {
		err = f.load(info.Size())
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	if f.end, err = file.Seek(0, io.SeekEnd); err != nil {
		file.Close()
		return nil, fmt.Errorf("replay: failed to seek in %s: %w", path, err)
	}
	f.pending = make([]byte, 0, logBufferSize)
	return f, nil
}

// Size returns the number of bits m and hash functions k for n expected
// elements at false-positive rate p: m = −n·ln p / (ln 2)², k = (m/n)·ln 2.
func Size(n uint64, p float64) (bits uint64, hashes int) {
	m := math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2))
	bits = max(64, uint64(m))
	hashes = int(math.Round(float64(bits) / float64(n) * math.Ln2))
	return bits, min(max(hashes, 1), maxHashes)
}

// newBits allocates a filter's bit array and touches every page of it at
// once. Left to the first packets, the page faults of a fresh 36 MiB
// filter (the default size) came on the hot path, 20 per packet, and made
// a queue: BenchmarkMixLatency saw the first half second of a new filter
// at up to 200 ms per packet, at every epoch change.
func newBits(nbits uint64) []uint64 {
	bits := make([]uint64, (nbits+63)/64)
	const wordsPerPage = 4096 / 8
	for i := 0; i < len(bits); i += wordsPerPage {
		bits[i] = 0
	}
	return bits
}

func (f *Filter) create(expected uint64, falsePositive float64, rand io.Reader) error {
	f.nbits, f.hashes = Size(expected, falsePositive)
	if f.nbits > maxBits {
		return fmt.Errorf("replay: %d expected tags at rate %g need %d bits, more than %d", expected, falsePositive, f.nbits, uint64(maxBits))
	}
	if _, err := io.ReadFull(rand, f.key[:]); err != nil {
		return fmt.Errorf("replay: failed to read the filter key: %w", err)
	}
	f.bits = newBits(f.nbits)
	var h [headerSize]byte
	n := copy(h[:], magic)
	h[n] = formatVersion
	h[n+1] = byte(f.hashes)
	binary.BigEndian.PutUint64(h[n+2:], f.nbits)
	copy(h[n+10:], f.key[:])
	if _, err := f.file.Write(h[:]); err != nil {
		return fmt.Errorf("replay: failed to write the header of %s: %w", f.path, err)
	}
	if err := f.file.Sync(); err != nil {
		return fmt.Errorf("replay: failed to sync %s: %w", f.path, err)
	}
	return nil
}

func (f *Filter) load(size int64) error {
	var h [headerSize]byte
	if _, err := io.ReadFull(f.file, h[:]); err != nil {
		return fmt.Errorf("replay: %s: header: %w", f.path, err)
	}
	if string(h[:len(magic)]) != magic {
		return fmt.Errorf("replay: %s is not a replay log", f.path)
	}
	n := len(magic)
	if h[n] != formatVersion {
		return fmt.Errorf("replay: %s has format version %d, want %d", f.path, h[n], formatVersion)
	}
	f.hashes = int(h[n+1])
	f.nbits = binary.BigEndian.Uint64(h[n+2:])
	copy(f.key[:], h[n+10:])
	if f.hashes < 1 || f.hashes > maxHashes || f.nbits < 64 || f.nbits > maxBits {
		return fmt.Errorf("replay: %s has a corrupt header (%d hashes, %d bits)", f.path, f.hashes, f.nbits)
	}
	f.bits = newBits(f.nbits)

	records := (size - int64(headerSize)) / TagSize
	r := bufio.NewReaderSize(f.file, 1<<16)
	var tag [TagSize]byte
	for range records {
		if _, err := io.ReadFull(r, tag[:]); err != nil {
			return fmt.Errorf("replay: %s: reading tags: %w", f.path, err)
		}
		f.add(&tag)
	}
	end := int64(headerSize) + records*TagSize
	if end != size {
		if err := f.file.Truncate(end); err != nil {
			return fmt.Errorf("replay: failed to drop the torn last record of %s: %w", f.path, err)
		}
	}
	if _, err := f.file.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("replay: failed to seek in %s: %w", f.path, err)
	}
	return nil
}

// seeds returns the two hashes from which the tag's bit positions are made
// by double hashing (Kirsch–Mitzenmacher): position i is h1 + i·h2 mod m.
// They are keyed BLAKE2b of the tag.
func (f *Filter) seeds(tag *[TagSize]byte) (h1, h2 uint64) {
	h, err := blake2b.New(16, f.key[:])
	if err != nil {
		panic("replay: internal error: " + err.Error())
	}
	h.Write(tag[:])
	var sum [16]byte
	h.Sum(sum[:0])
	return binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:]) | 1
}

// contains reports whether all of the tag's bits are set; the caller holds
// mu.
func (f *Filter) contains(tag *[TagSize]byte) bool {
	h1, h2 := f.seeds(tag)
	for i := range uint64(f.hashes) {
		bit := (h1 + i*h2) % f.nbits
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// add sets the tag's bits; the caller holds mu (or owns f).
func (f *Filter) add(tag *[TagSize]byte) {
	h1, h2 := f.seeds(tag)
	for i := range uint64(f.hashes) {
		bit := (h1 + i*h2) % f.nbits
		f.bits[bit/64] |= 1 << (bit % 64)
	}
	f.count++
}

// CheckAndAdd reports whether tag was (probably) seen before; if not, it adds
// it and appends it to the log. The log is durable only after [Filter.Sync].
func (f *Filter) CheckAndAdd(tag [TagSize]byte) (seen bool, err error) {
	if seen, err = f.Reserve(tag); seen || err != nil {
		return seen, err
	}
	return false, f.Record(tag)
}

// Reserve reports whether tag was (probably) seen before; if not, it adds it
// to the filter in memory only, so that concurrent copies of the packet are
// refused, without logging it. A provider reserves a tag, stores the packet,
// and only then records the tag: a crash in between can let a retransmitted
// copy be stored twice, but never makes the node refuse a packet it did not
// store.
func (f *Filter) Reserve(tag [TagSize]byte) (seen bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return false, ErrClosed
	}
	if f.contains(&tag) {
		return true, nil
	}
	f.add(&tag)
	return false, nil
}

// Record appends a reserved tag to the log.
func (f *Filter) Record(tag [TagSize]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return ErrClosed
	}
	f.unsynced = true
	f.pending = append(f.pending, tag[:]...)
	if len(f.pending) >= logBufferSize {
		// Written now, as Sync would; a failure is Sync's to report.
		f.writePending()
	}
	return nil
}

// writePending writes the pending records at the log's end; f.mu is held.
// What a failed write wrote of them stays pending, from its last whole
// record on.
func (f *Filter) writePending() error {
	n, err := f.file.WriteAt(f.pending, f.end)
	whole := n - n%TagSize
	f.end += int64(whole)
	f.pending = f.pending[:copy(f.pending, f.pending[whole:])]
	if err != nil {
		return fmt.Errorf("replay: failed to write %s: %w", f.path, err)
	}
	return nil
}

// Sync makes every tag added so far durable. A node calls it before it
// forwards the packets whose tags it added (group commit: once per batch).
// The fsync runs without holding the filter's lock, so checks go on
// meanwhile.
func (f *Filter) Sync() error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	if f.file == nil {
		f.mu.Unlock()
		return ErrClosed
	}
	if !f.unsynced {
		f.mu.Unlock()
		return nil
	}
	if err := f.writePending(); err != nil {
		f.mu.Unlock()
		return err
	}
	f.unsynced = false
	f.mu.Unlock()
	if err := f.file.Sync(); err != nil {
		f.mu.Lock()
		f.unsynced = true
		f.mu.Unlock()
		return fmt.Errorf("replay: failed to sync %s: %w", f.path, err)
	}
	return nil
}

// Count is the number of tags added, including those read from the log.
func (f *Filter) Count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// FalsePositiveRate estimates the probability that a new tag is taken for a
// replay, from the number of tags added: (1 − e^(−k·n/m))^k.
func (f *Filter) FalsePositiveRate() float64 {
	n := float64(f.Count())
	k := float64(f.hashes)
	return math.Pow(1-math.Exp(-k*n/float64(f.nbits)), k)
}

// ErrClosed is returned by a Filter's methods after Close.
var ErrClosed = errors.New("replay: filter closed")

// Close syncs the log and closes it.
func (f *Filter) Close() error {
	err := f.Sync()
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return ErrClosed
	}
	if cerr := f.file.Close(); err == nil {
		err = cerr
	}
	f.file = nil
	return err
}

// Remove closes the filter and deletes its log, for when the epoch key it
// served has been erased. The filter key is wiped.
func (f *Filter) Remove() error {
	if err := f.Close(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	clear(f.key[:])
	if err := os.Remove(f.path); err != nil {
		return fmt.Errorf("replay: failed to remove %s: %w", f.path, err)
	}
	return nil
}
