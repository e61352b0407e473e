package convey

import (
	"crypto/ed25519"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

const version = 1

// Message types.
const (
	typeRequest  = 1
	typeConveyed = 2
	typeOutcome  = 3
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = fmt.Errorf("convey: malformed message")

// Request is A's message to I: a text for the party I knows as To (or an
// answer to a conveyed message, InReplyTo), and the receipt A wants.
type Request struct {
	ID        [IDSize]byte
	To        string
	Text      string
	Receipt   ReceiptKind
	Salt      [SaltSize]byte
	InReplyTo [IDSize]byte // zero for a new message
}

// Conveyed is what I passes on to B: the text, the label I gives the
// sender, I's note, and the ID to answer to.
type Conveyed struct {
	ID   [IDSize]byte
	From string
	Note string
	Text string
}

// Outcome is I's word to A: conveyed (with the receipt asked for) or
// refused (with I's note).
type Outcome struct {
	ID       [IDSize]byte
	Conveyed bool
	Note     string
	Receipt  *Receipt // nil if none was asked for or it was refused
}

// Message is one of *Request, *Conveyed, *Outcome.
type Message interface{ isMessage() }

func (*Request) isMessage()  {}
func (*Conveyed) isMessage() {}
func (*Outcome) isMessage()  {}

func checkText(what, s string, max int, empty bool) error {
	if (!empty && s == "") || len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("convey: a %s must be UTF-8 of at most %d bytes%s", what, max, map[bool]string{false: ", not empty", true: ""}[empty])
	}
	return nil
}

func addString(b *cryptobyte.Builder, s string) {
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

func readString(s *cryptobyte.String, out *string) bool {
	var v cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&v) {
		return false
	}
	*out = string(v)
	return true
}

// Marshal encodes a message: u8 version | u8 type | ID [16] | fields, each
// string u24-length-prefixed; a receipt is u8 present | commitment [32] |
// to | u64 time | intermediary key [32] | u8 signature length | signature.
func Marshal(m Message) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	switch m := m.(type) {
	case *Request:
		if err := checkText("text", m.Text, MaxTextLength, false); err != nil {
			return nil, err
		}
		if err := checkText("recipient label", m.To, MaxLabelLength, true); err != nil {
			return nil, err
		}
		if m.Receipt > SignedReceipt {
			return nil, fmt.Errorf("convey: receipt kind %d", m.Receipt)
		}
		b.AddUint8(typeRequest)
		b.AddBytes(m.ID[:])
		addString(&b, m.To)
		addString(&b, m.Text)
		b.AddUint8(uint8(m.Receipt))
		b.AddBytes(m.Salt[:])
		b.AddBytes(m.InReplyTo[:])
	case *Conveyed:
		if err := checkText("text", m.Text, MaxTextLength, false); err != nil {
			return nil, err
		}
		if err := checkText("sender label", m.From, MaxLabelLength, false); err != nil {
			return nil, err
		}
		if err := checkText("note", m.Note, MaxNoteLength, true); err != nil {
			return nil, err
		}
		b.AddUint8(typeConveyed)
		b.AddBytes(m.ID[:])
		addString(&b, m.From)
		addString(&b, m.Note)
		addString(&b, m.Text)
	case *Outcome:
		if err := checkText("note", m.Note, MaxNoteLength, true); err != nil {
			return nil, err
		}
		b.AddUint8(typeOutcome)
		b.AddBytes(m.ID[:])
		b.AddUint8(boolByte(m.Conveyed))
		addString(&b, m.Note)
		if m.Receipt == nil {
			b.AddUint8(0)
			break
		}
		r := m.Receipt
		if err := checkText("receipt label", r.To, MaxLabelLength, true); err != nil {
			return nil, err
		}
		if len(r.Intermediary) != ed25519.PublicKeySize || (len(r.Signature) != 0 && len(r.Signature) != ed25519.SignatureSize) {
			return nil, fmt.Errorf("convey: a receipt with a %d-byte key and a %d-byte signature", len(r.Intermediary), len(r.Signature))
		}
		b.AddUint8(1)
		b.AddBytes(r.Commitment[:])
		addString(&b, r.To)
		b.AddUint64(uint64(r.Time.Unix()))
		b.AddBytes(r.Intermediary)
		b.AddUint8(uint8(len(r.Signature)))
		b.AddBytes(r.Signature)
	default:
		return nil, fmt.Errorf("convey: unknown message %T", m)
	}
	return b.Bytes()
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
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
	var err error
	switch typ {
	case typeRequest:
		r := &Request{ID: id}
		var kind uint8
		if !readString(&s, &r.To) || !readString(&s, &r.Text) || !s.ReadUint8(&kind) || !s.CopyBytes(r.Salt[:]) || !s.CopyBytes(r.InReplyTo[:]) {
			return nil, fmt.Errorf("%w: truncated request", ErrMalformed)
		}
		r.Receipt = ReceiptKind(kind)
		if kind > uint8(SignedReceipt) {
			return nil, fmt.Errorf("%w: receipt kind %d", ErrMalformed, kind)
		}
		if err = checkText("text", r.Text, MaxTextLength, false); err == nil {
			err = checkText("recipient label", r.To, MaxLabelLength, true)
		}
		m = r
	case typeConveyed:
		c := &Conveyed{ID: id}
		if !readString(&s, &c.From) || !readString(&s, &c.Note) || !readString(&s, &c.Text) {
			return nil, fmt.Errorf("%w: truncated conveyed message", ErrMalformed)
		}
		if err = checkText("text", c.Text, MaxTextLength, false); err == nil {
			if err = checkText("sender label", c.From, MaxLabelLength, false); err == nil {
				err = checkText("note", c.Note, MaxNoteLength, true)
			}
		}
		m = c
	case typeOutcome:
		o := &Outcome{ID: id}
		var conveyed, present uint8
		if !s.ReadUint8(&conveyed) || conveyed > 1 || !readString(&s, &o.Note) || !s.ReadUint8(&present) || present > 1 {
			return nil, fmt.Errorf("%w: truncated outcome", ErrMalformed)
		}
		o.Conveyed = conveyed == 1
		if present == 1 {
			r := &Receipt{}
			var t uint64
			var sigLen uint8
			key := make([]byte, ed25519.PublicKeySize)
			if !s.CopyBytes(r.Commitment[:]) || !readString(&s, &r.To) || !s.ReadUint64(&t) || !s.CopyBytes(key) || !s.ReadUint8(&sigLen) {
				return nil, fmt.Errorf("%w: truncated receipt", ErrMalformed)
			}
			if t > 1<<40 || (sigLen != 0 && sigLen != ed25519.SignatureSize) {
				return nil, fmt.Errorf("%w: receipt time %d, signature of %d bytes", ErrMalformed, t, sigLen)
			}
			if sigLen > 0 {
				r.Signature = make([]byte, sigLen)
				if !s.CopyBytes(r.Signature) {
					return nil, fmt.Errorf("%w: truncated signature", ErrMalformed)
				}
			}
			r.Time, r.Intermediary = time.Unix(int64(t), 0).UTC(), ed25519.PublicKey(key)
			o.Receipt = r
			err = checkText("receipt label", r.To, MaxLabelLength, true)
		}
		if err == nil {
			err = checkText("note", o.Note, MaxNoteLength, true)
		}
		m = o
	default:
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the message", ErrMalformed, len(s))
	}
	return m, nil
}
