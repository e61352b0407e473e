// Package convey is conveyed mode and conveyance receipts: where A and B
// hold no keys for each other, A writes to B through an intermediary I, who
// reads it, may annotate it, and passes it on (or refuses); B sees it came
// through I, under the label I gives A, with I's note, and answers the same
// way. I can give A a receipt that the message was conveyed to the party
// labelled X at a given time, naming the message by a salted commitment.
//
// Receipts come in two kinds, chosen by A per message:
//
//   - deniable: the receipt travels inside I's session with A and is
//     authenticated by that session only. A is convinced; nobody else can
//     be, since A could have written the same bytes.
//   - signed: the receipt carries I's Ed25519 signature (the signing key of
//     I's contact card), which anyone holding I's card can check. With the
//     message and its salt, A can show others that I conveyed it.
//
// The commitment is SHA-256 over a label, a 32-byte salt A chose and the
// message: a plain hash would let anyone confirm a guessed short message
// such as "yes".
//
// The client keeps the desk and sends the messages; this package encodes
// them and makes and checks receipts.
package convey

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Sizes.
const (
	IDSize         = 16
	SaltSize       = 32
	CommitmentSize = sha256.Size
	MaxTextLength  = 64 << 10
	MaxLabelLength = 200
	MaxNoteLength  = 2000
)

// ReceiptKind is the receipt A asks for.
type ReceiptKind uint8

const (
	NoReceipt       ReceiptKind = 0
	DeniableReceipt ReceiptKind = 1
	SignedReceipt   ReceiptKind = 2
)

func (k ReceiptKind) String() string {
	switch k {
	case DeniableReceipt:
		return "deniable (convinces you only; nobody else can check it)"
	case SignedReceipt:
		return "signed (anyone with the intermediary's card can check it, given the message and salt)"
	}
	return "none"
}

// Domain-separation labels.
const (
	commitLabel  = "backchannel conveyance commitment v1\x00"
	receiptLabel = "backchannel conveyance receipt v1\x00"
)

// Commit is the salted commitment to a message.
func Commit(salt [SaltSize]byte, text string) [CommitmentSize]byte {
	h := sha256.New()
	h.Write([]byte(commitLabel))
	h.Write(salt[:])
	h.Write([]byte(text))
	return [CommitmentSize]byte(h.Sum(nil))
}

// Receipt says that the message with this commitment was conveyed to the
// party labelled To at Time, by the intermediary whose signing key is
// Intermediary. Signature is empty for a deniable receipt.
type Receipt struct {
	Commitment   [CommitmentSize]byte
	To           string
	Time         time.Time // second precision
	Intermediary ed25519.PublicKey
	Signature    []byte
}

// signed is what a signed receipt's signature covers.
func (r *Receipt) signed() []byte {
	b := []byte(receiptLabel)
	b = append(b, r.Commitment[:]...)
	b = append(b, r.Intermediary...)
	b = appendString(b, r.To)
	return appendUint64(b, uint64(r.Time.Unix()))
}

// NewReceipt makes a receipt for a message committed to with commitment,
// conveyed to the party labelled to at t: signed with key if kind is
// SignedReceipt, unsigned (deniable) otherwise.
func NewReceipt(kind ReceiptKind, commitment [CommitmentSize]byte, to string, t time.Time, key ed25519.PrivateKey) *Receipt {
	r := &Receipt{Commitment: commitment, To: to, Time: t.UTC().Truncate(time.Second), Intermediary: key.Public().(ed25519.PublicKey)}
	if kind == SignedReceipt {
		r.Signature = ed25519.Sign(key, r.signed())
	}
	return r
}

// Errors of receipt checks.
var (
	// ErrNotSigned: a deniable receipt proves nothing to a third party.
	ErrNotSigned = errors.New("convey: the receipt is deniable: it is not signed, and convinces only the one it was given to")
	// ErrReceipt: the receipt does not match the message, the salt or the
	// intermediary, or its signature does not verify.
	ErrReceipt = errors.New("convey: the receipt does not hold")
)

// Verify checks, as a third party would, that a signed receipt names this
// message (with its salt) and carries the signature of the intermediary
// whose signing key is intermediary.
func (r *Receipt) Verify(text string, salt [SaltSize]byte, intermediary ed25519.PublicKey) error {
	if c := Commit(salt, text); subtle.ConstantTimeCompare(c[:], r.Commitment[:]) != 1 {
		return fmt.Errorf("%w: it names another message (or another salt)", ErrReceipt)
	}
	if !intermediary.Equal(r.Intermediary) {
		return fmt.Errorf("%w: it is from another intermediary", ErrReceipt)
	}
	if len(r.Signature) == 0 {
		return ErrNotSigned
	}
	if !ed25519.Verify(intermediary, r.signed(), r.Signature) {
		return fmt.Errorf("%w: the signature does not verify", ErrReceipt)
	}
	return nil
}

// Matches checks, as the receipt's holder does for a deniable receipt that
// arrived inside the session, that it names this message.
func (r *Receipt) Matches(text string, salt [SaltSize]byte) bool {
	c := Commit(salt, text)
	return subtle.ConstantTimeCompare(c[:], r.Commitment[:]) == 1
}

func appendString(b []byte, s string) []byte {
	b = appendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendUint64(b []byte, v uint64) []byte {
	for i := 7; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}
