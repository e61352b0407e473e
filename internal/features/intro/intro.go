// Package intro is the wire format of introductions: an intermediary I, who
// has sessions with A and with B, sends each the other's contact card under
// a label I chooses (B may be shown to A only as "a party in country X")
// with a note; each answers I; only when both accept does I tell both, and
// only then do they become contacts. A side that declines sends the same
// kind of answer as one that accepts, and I tells the other nothing, so
// neither learns whether the other declined or has not answered.
//
// Every message travels inside I's sessions (deniable). The client keeps
// the introductions and sends the messages; this package encodes them.
package intro

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// IDSize is the length of an introduction ID.
const IDSize = 16

// Limits of the text fields, in bytes.
const (
	MaxLabelLength = 200
	MaxNoteLength  = 2000
	maxCardLength  = 4096
)

const version = 1

// Message types.
const (
	typeIntroduction = 1
	typeAnswer       = 2
	typeDone         = 3
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = fmt.Errorf("intro: malformed message")

// Introduction is what I sends to each side: the other's card, the label
// I shows it under, and I's note.
type Introduction struct {
	ID    [IDSize]byte
	Label string
	Note  string
	Card  []byte // the other side's card, binary
}

// Answer is a side's answer to I.
type Answer struct {
	ID     [IDSize]byte
	Accept bool
}

// Done is I's word to each side that both accepted.
type Done struct {
	ID [IDSize]byte
}

// Message is one of *Introduction, *Answer, *Done.
type Message interface{ isMessage() }

func (*Introduction) isMessage() {}
func (*Answer) isMessage()       {}
func (*Done) isMessage()         {}

func checkText(what, s string, max int, empty bool) error {
	if (!empty && s == "") || len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("intro: a %s must be %d bytes of UTF-8 at most (and not empty: %v)", what, max, !empty)
	}
	return nil
}

// Marshal encodes a message:
//
//	u8 version | u8 type | ID [16] | …
//	introduction: u16 label | u16 note | u16 card (each length-prefixed)
//	answer:       u8 accept (0 or 1)
//	done:         nothing
func Marshal(m Message) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	switch m := m.(type) {
	case *Introduction:
		if err := checkText("label", m.Label, MaxLabelLength, false); err != nil {
			return nil, err
		}
		if err := checkText("note", m.Note, MaxNoteLength, true); err != nil {
			return nil, err
		}
		if len(m.Card) == 0 || len(m.Card) > maxCardLength {
			return nil, fmt.Errorf("intro: a card of %d bytes", len(m.Card))
		}
		b.AddUint8(typeIntroduction)
		b.AddBytes(m.ID[:])
		for _, f := range [][]byte{[]byte(m.Label), []byte(m.Note), m.Card} {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
		}
	case *Answer:
		b.AddUint8(typeAnswer)
		b.AddBytes(m.ID[:])
		accept := uint8(0)
		if m.Accept {
			accept = 1
		}
		b.AddUint8(accept)
	case *Done:
		b.AddUint8(typeDone)
		b.AddBytes(m.ID[:])
	default:
		return nil, fmt.Errorf("intro: unknown message %T", m)
	}
	return b.Bytes()
}

// Parse decodes a message strictly.
func Parse(data []byte) (Message, error) {
	s := cryptobyte.String(data)
	var v, typ uint8
	var id [IDSize]byte
	if !s.ReadUint8(&v) || v != version {
		return nil, fmt.Errorf("%w: version %d, this program reads version %d", ErrMalformed, v, version)
	}
	if !s.ReadUint8(&typ) || !s.CopyBytes(id[:]) {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	var m Message
	switch typ {
	case typeIntroduction:
		var label, note, card cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&label) || !s.ReadUint16LengthPrefixed(&note) || !s.ReadUint16LengthPrefixed(&card) {
			return nil, fmt.Errorf("%w: truncated introduction", ErrMalformed)
		}
		in := &Introduction{ID: id, Label: string(label), Note: string(note), Card: append([]byte(nil), card...)}
		if err := checkText("label", in.Label, MaxLabelLength, false); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if err := checkText("note", in.Note, MaxNoteLength, true); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if len(in.Card) == 0 || len(in.Card) > maxCardLength {
			return nil, fmt.Errorf("%w: a card of %d bytes", ErrMalformed, len(in.Card))
		}
		m = in
	case typeAnswer:
		var accept uint8
		if !s.ReadUint8(&accept) || accept > 1 {
			return nil, fmt.Errorf("%w: bad answer", ErrMalformed)
		}
		m = &Answer{ID: id, Accept: accept == 1}
	case typeDone:
		m = &Done{ID: id}
	default:
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, typ)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the message", ErrMalformed, len(s))
	}
	return m, nil
}
