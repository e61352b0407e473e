package interest

import (
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// IDSize is the length of a check ID.
const IDSize = 16

// MaxQuestionLength bounds a question, in bytes.
const MaxQuestionLength = 1000

// messageVersion is the first byte of every check message.
const messageVersion = 1

// Type is a check message's type.
type Type uint8

const (
	// TypeAsk opens a check: the question, the deadline and SMP message 1.
	TypeAsk Type = 1
	// TypeStep carries SMP message 2, 3 or 4.
	TypeStep Type = 2
	// TypeAbort ends the check as "no match".
	TypeAbort Type = 3
)

func (t Type) String() string {
	switch t {
	case TypeAsk:
		return "ask"
	case TypeStep:
		return "step"
	case TypeAbort:
		return "abort"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Message is a check message, carried inside the session:
//
//	u8 version | u8 type | check ID [16] | …
//	ask:   u64 deadline (Unix seconds) | u16 length | question | u16 length | SMP message 1
//	step:  u8 step (2–4) | u16 length | SMP message
//	abort: nothing
type Message struct {
	Type     Type
	CheckID  [IDSize]byte
	Question string
	Deadline time.Time
	Step     uint8
	SMP      []byte
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = fmt.Errorf("interest: malformed message")

func checkQuestion(q string) error {
	if q == "" || len(q) > MaxQuestionLength || !utf8.ValidString(q) {
		return fmt.Errorf("interest: a question must be 1 to %d bytes of UTF-8", MaxQuestionLength)
	}
	return nil
}

// MarshalBinary encodes the message.
func (m *Message) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(messageVersion)
	b.AddUint8(uint8(m.Type))
	b.AddBytes(m.CheckID[:])
	switch m.Type {
	case TypeAsk:
		if err := checkQuestion(m.Question); err != nil {
			return nil, err
		}
		b.AddUint64(uint64(m.Deadline.Unix()))
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(m.Question)) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.SMP) })
	case TypeStep:
		if m.Step < 2 || m.Step > 4 {
			return nil, fmt.Errorf("interest: step %d", m.Step)
		}
		b.AddUint8(m.Step)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.SMP) })
	case TypeAbort:
	default:
		return nil, fmt.Errorf("interest: message type %d", m.Type)
	}
	return b.Bytes()
}

// ParseMessage decodes a message strictly.
func ParseMessage(data []byte) (*Message, error) {
	s := cryptobyte.String(data)
	var version, typ uint8
	m := &Message{}
	if !s.ReadUint8(&version) || version != messageVersion {
		return nil, fmt.Errorf("%w: version %d, this program reads version %d", ErrMalformed, version, messageVersion)
	}
	if !s.ReadUint8(&typ) || !s.CopyBytes(m.CheckID[:]) {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	m.Type = Type(typ)
	switch m.Type {
	case TypeAsk:
		var deadline uint64
		var q, smpMsg cryptobyte.String
		if !s.ReadUint64(&deadline) || !s.ReadUint16LengthPrefixed(&q) || !s.ReadUint16LengthPrefixed(&smpMsg) {
			return nil, fmt.Errorf("%w: truncated ask", ErrMalformed)
		}
		if deadline > 1<<40 {
			return nil, fmt.Errorf("%w: deadline %d", ErrMalformed, deadline)
		}
		m.Deadline, m.Question, m.SMP = time.Unix(int64(deadline), 0).UTC(), string(q), append([]byte(nil), smpMsg...)
		if err := checkQuestion(m.Question); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	case TypeStep:
		var smpMsg cryptobyte.String
		if !s.ReadUint8(&m.Step) || !s.ReadUint16LengthPrefixed(&smpMsg) {
			return nil, fmt.Errorf("%w: truncated step", ErrMalformed)
		}
		if m.Step < 2 || m.Step > 4 {
			return nil, fmt.Errorf("%w: step %d", ErrMalformed, m.Step)
		}
		m.SMP = append([]byte(nil), smpMsg...)
	case TypeAbort:
	default:
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, typ)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the message", ErrMalformed, len(s))
	}
	return m, nil
}
