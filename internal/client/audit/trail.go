package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
)

// Labels of the trail's vault entries.
const (
	headLabel   = "audit-head"
	entryPrefix = "audit/"
)

func entryLabel(seq uint64) string { return fmt.Sprintf("%s%016x", entryPrefix, seq) }

// head is where the chain ends: the last entry and its hash, and the first
// entry kept. Encoding, version 1: u8 version | u64 last | hash[32] | u64
// first.
type head struct {
	last  uint64
	hash  [sha256.Size]byte
	first uint64
}

const headVersion = 1

func (h head) marshal() []byte {
	out := []byte{headVersion}
	out = binary.BigEndian.AppendUint64(out, h.last)
	out = append(out, h.hash[:]...)
	return binary.BigEndian.AppendUint64(out, h.first)
}

func parseHead(b []byte) (head, error) {
	if len(b) != 1+8+sha256.Size+8 || b[0] != headVersion {
		return head{}, fmt.Errorf("audit: the trail's head record is malformed (%d bytes)", len(b))
	}
	var h head
	h.last = binary.BigEndian.Uint64(b[1:])
	copy(h.hash[:], b[9:])
	h.first = binary.BigEndian.Uint64(b[9+sha256.Size:])
	return h, nil
}

// Trail is an identity's audit trail in its vault. Its methods may be
// called from several goroutines.
type Trail struct {
	dir *vault.Dir
	now func() time.Time

	mu   sync.Mutex
	head head // guarded by mu
}

// Open opens the trail of the vault in dir, starting one if it has none.
// now gives the entries' times.
func Open(dir *vault.Dir, now func() time.Time) (*Trail, error) {
	t := &Trail{dir: dir, now: now, head: head{first: 1}}
	b, err := dir.Get(headLabel)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		labels, lerr := dir.Labels(entryPrefix)
		if lerr != nil {
			return nil, lerr
		}
		if len(labels) > 0 {
			return nil, fmt.Errorf("audit: the trail's head record is gone and %d entries are left: the trail was tampered with (backchannel audit verify says more)", len(labels))
		}
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("audit: reading the trail's head: %w", err)
	}
	if t.head, err = parseHead(b); err != nil {
		return nil, err
	}
	return t, nil
}

// Record appends an entry: officer took action on object.
func (t *Trail) Record(officer string, action Action, object string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.appendLocked(Entry{Officer: officer, Action: action, Object: object})
	return err
}

// appendLocked numbers, links and stores e, then moves the head; t.mu is
// held. An entry stored without its head moved (a crash in between) is
// overwritten by the next append.
func (t *Trail) appendLocked(e Entry) (Entry, error) {
	e.Seq, e.Prev, e.Time = t.head.last+1, t.head.hash, t.now().UTC()
	encoded, err := e.MarshalBinary()
	if err != nil {
		return Entry{}, err
	}
	if err := t.dir.Put(entryLabel(e.Seq), encoded); err != nil {
		return Entry{}, fmt.Errorf("audit: storing entry %d: %w", e.Seq, err)
	}
	next := head{last: e.Seq, hash: hash(encoded), first: t.head.first}
	if err := t.dir.Put(headLabel, next.marshal()); err != nil {
		return Entry{}, fmt.Errorf("audit: moving the trail's head to entry %d: %w", e.Seq, err)
	}
	t.head = next
	return e, nil
}

// Entries returns the entries kept, oldest first, as they are stored; use
// Verify to know that they are whole.
func (t *Trail) Entries() ([]Entry, error) {
	t.mu.Lock()
	h := t.head
	t.mu.Unlock()
	var out []Entry
	for seq := h.first; seq <= h.last && seq != 0; seq++ {
		e, _, err := t.read(seq)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// read reads and decodes entry seq, and returns it with its hash.
func (t *Trail) read(seq uint64) (Entry, [sha256.Size]byte, error) {
	b, err := t.dir.Get(entryLabel(seq))
	if errors.Is(err, vault.ErrNotFound) {
		return Entry{}, [sha256.Size]byte{}, fmt.Errorf("%w: entry %d is missing", ErrTampered, seq)
	}
	if err != nil {
		return Entry{}, [sha256.Size]byte{}, fmt.Errorf("%w: entry %d does not open (altered, or moved from another place): %v", ErrTampered, seq, err)
	}
	var e Entry
	if err := e.UnmarshalBinary(b); err != nil {
		return Entry{}, [sha256.Size]byte{}, fmt.Errorf("%w: entry %d: %v", ErrTampered, seq, err)
	}
	return e, hash(b), nil
}

// ErrTampered is wrapped by every finding of Verify.
var ErrTampered = errors.New("audit: the trail was tampered with")

// Verify walks the whole trail and reports the first place where it does
// not hold: an entry missing, altered, moved, out of its place in the
// chain, an end cut off, or a start cut off without a cut entry saying so.
// It returns the number of entries checked. (An entry after the head's
// last is not a finding: a crash between storing an entry and moving the
// head leaves one, which the next entry overwrites.)
func (t *Trail) Verify() (int, error) {
	t.mu.Lock()
	h := t.head
	t.mu.Unlock()
	if h.last == 0 {
		return 0, nil
	}
	var first Entry
	var prev [sha256.Size]byte
	cuts := map[uint64][sha256.Size]byte{} // first kept → hash of the last removed
	checked := 0
	for seq := h.first; seq <= h.last; seq++ {
		e, sum, err := t.read(seq)
		if err != nil {
			return checked, err
		}
		if e.Seq != seq {
			return checked, fmt.Errorf("%w: the entry in place %d says it is entry %d (entries reordered)", ErrTampered, seq, e.Seq)
		}
		if seq == h.first {
			first = e
		} else if !equalHashes(e.Prev, prev) {
			return checked, fmt.Errorf("%w: entry %d does not follow entry %d (one of them altered, or entries reordered)", ErrTampered, seq, seq-1)
		}
		if e.Action == CutAction {
			cuts[e.FirstKept] = e.CutHash
		}
		prev = sum
		checked++
	}
	if !equalHashes(prev, h.hash) {
		return checked, fmt.Errorf("%w: the last entry, %d, is not the one the trail's head names (the end of the trail was cut off, or the last entry altered)", ErrTampered, h.last)
	}
	return checked, checkStart(first, cuts)
}

// checkStart checks where the trail begins: at entry 1, or where a cut
// entry of the chain says a cut left it. (Not only the last cut: a crash
// during a cut leaves its entry written and the start where the cut before
// left it.)
func checkStart(first Entry, cuts map[uint64][sha256.Size]byte) error {
	if first.Seq == 1 {
		if first.Prev != ([sha256.Size]byte{}) {
			return fmt.Errorf("%w: entry 1 links to an entry before it", ErrTampered)
		}
		return nil
	}
	cutHash, ok := cuts[first.Seq]
	if !ok {
		return fmt.Errorf("%w: the trail starts at entry %d and no cut entry records why (its start was removed)", ErrTampered, first.Seq)
	}
	if !equalHashes(cutHash, first.Prev) {
		return fmt.Errorf("%w: the trail starts at entry %d, which is not the entry its cut kept", ErrTampered, first.Seq)
	}
	return nil
}

// Cut removes the entries older than before from the trail's start, and
// records the cut, by officer, in an entry of its own. It keeps at least
// the last entry, and returns how many it removed.
func (t *Trail) Cut(officer string, before time.Time) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.head
	keep := h.first
	var cutHash [sha256.Size]byte
	for ; keep < h.last; keep++ {
		e, _, err := t.read(keep)
		if err != nil {
			return 0, err
		}
		if !e.Time.Before(before) {
			break
		}
	}
	if keep == h.first {
		return 0, nil
	}
	next, _, err := t.read(keep)
	if err != nil {
		return 0, err
	}
	cutHash = next.Prev
	// The cut entry first, then the head that starts at keep, then the
	// files: a crash in between leaves entries before the head's first,
	// which nothing reads and the next cut removes.
	if _, err := t.appendLocked(Entry{Officer: officer, Action: CutAction, Object: fmt.Sprintf("entries %d to %d", h.first, keep-1), FirstKept: keep, CutHash: cutHash}); err != nil {
		return 0, err
	}
	moved := t.head
	moved.first = keep
	if err := t.dir.Put(headLabel, moved.marshal()); err != nil {
		return 0, fmt.Errorf("audit: moving the trail's start to entry %d: %w", keep, err)
	}
	t.head = moved
	removed := 0
	for seq := h.first; seq < keep; seq++ {
		if err := t.dir.Delete(entryLabel(seq)); err != nil {
			return removed, fmt.Errorf("audit: removing entry %d: %w", seq, err)
		}
		removed++
	}
	return removed, nil
}
