// Package audit is an identity's audit trail: the organisation's own record,
// inside the client's vault, of what its officers did — who took which
// action on what (a message ID, a contact's label), and when. It never
// holds a message's text.
//
// The trail is a hash chain. Entry n is stored in the vault under a label
// of its own, and carries the SHA-256 hash of entry n−1; a head record
// holds the number and hash of the last entry and the first one kept.
// [Trail.Verify] walks the chain and finds an entry removed, altered or
// moved (its hash no longer links, or the vault refuses it: every vault
// entry is sealed with its label as associated data), and the end of the
// trail cut off (the head names an entry that is gone, or a hash that is
// not the last entry's). The trail is shortened only from its start, by
// [Trail.Cut], which appends an entry recording the cut: the first entry
// kept and the hash of the last one removed, so that the chain still
// verifies and any other removal still shows.
//
// What it is not: a defence against someone holding the vault's key. An
// officer with a passphrase can open the vault, and with enough care
// rewrite the whole chain and its head; the trail makes changes to its
// files detectable, and partial edits detectable to anyone who verifies.
package audit

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Action names what an officer did: the control protocol's name of the
// operation asked ("send", "desk-pass", "check-answer", "read", …), or one
// of the actions below.
type Action string

const (
	// Unlock: the passphrase opened the identity's state.
	Unlock Action = "unlock"
	// CutAction is the entry that records a cut of the trail's start.
	CutAction Action = "cut"
)

// Entry is one action of the trail.
type Entry struct {
	// Seq numbers the entries from 1, without gaps.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Officer is who took the action.
	Officer string `json:"officer"`
	Action  Action `json:"action"`
	// Object is what the action was on: a message ID, a contact's label.
	Object string `json:"object,omitempty"`
	// Prev is the hash of entry Seq−1 (zero for entry 1).
	Prev [sha256.Size]byte `json:"-"`
	// FirstKept and CutHash, for a cut entry: the first entry kept, and
	// the hash of the entry before it, the last one removed.
	FirstKept uint64            `json:"first_kept,omitempty"`
	CutHash   [sha256.Size]byte `json:"-"`
}

// Entry encoding, version 1, big-endian:
//
//	u8 version | u64 seq | i64 unix nanoseconds | u16-prefixed officer |
//	u16-prefixed action | u16-prefixed object | prev[32] |
//	u64 first kept | cut hash[32]
const entryVersion = 1

// maxField bounds a text field: names and IDs, not texts.
const maxField = 1024

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("audit: malformed entry")

// MarshalBinary encodes e.
func (e *Entry) MarshalBinary() ([]byte, error) {
	out := []byte{entryVersion}
	out = binary.BigEndian.AppendUint64(out, e.Seq)
	out = binary.BigEndian.AppendUint64(out, uint64(e.Time.UnixNano()))
	for _, f := range []string{e.Officer, string(e.Action), e.Object} {
		if len(f) > maxField || !utf8.ValidString(f) {
			return nil, fmt.Errorf("audit: a field of %d bytes (at most %d of UTF-8)", len(f), maxField)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	out = append(out, e.Prev[:]...)
	out = binary.BigEndian.AppendUint64(out, e.FirstKept)
	return append(out, e.CutHash[:]...), nil
}

// UnmarshalBinary decodes an entry strictly: known version, fields within
// bounds, nothing left over.
func (e *Entry) UnmarshalBinary(b []byte) error {
	if len(b) < 1+8+8 || b[0] != entryVersion {
		return fmt.Errorf("%w: %d bytes, version %v", ErrMalformed, len(b), firstByte(b))
	}
	var d Entry
	d.Seq = binary.BigEndian.Uint64(b[1:])
	d.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[9:]))).UTC()
	rest := b[17:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 2 {
			return fmt.Errorf("%w: cut short", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > maxField || len(rest) < 2+n || !utf8.Valid(rest[2:2+n]) {
			return fmt.Errorf("%w: a field of %d bytes", ErrMalformed, n)
		}
		fields[i], rest = string(rest[2:2+n]), rest[2+n:]
	}
	d.Officer, d.Action, d.Object = fields[0], Action(fields[1]), fields[2]
	if len(rest) != sha256.Size+8+sha256.Size {
		return fmt.Errorf("%w: %d bytes after the fields", ErrMalformed, len(rest))
	}
	copy(d.Prev[:], rest)
	d.FirstKept = binary.BigEndian.Uint64(rest[sha256.Size:])
	copy(d.CutHash[:], rest[sha256.Size+8:])
	*e = d
	return nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

// hash is the entry's link in the chain: SHA-256 of its encoding.
func hash(encoded []byte) [sha256.Size]byte { return sha256.Sum256(encoded) }

func equalHashes(a, b [sha256.Size]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }
