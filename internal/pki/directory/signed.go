package directory

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Signed document encoding, version 1:
//
//	"bcsigned" | u8 version | u24-prefixed document | u8 signature count
//	| (authority key [32] | Ed25519 signature [64]) per signature
//
// Each signature covers signatureContext followed by the document bytes.
const (
	signedMagic      = "bcsigned"
	signedVersion    = 1
	signatureContext = "backchannel network document v1\x00"
	// MaxSignatures is the largest number of signatures a document may carry.
	MaxSignatures = 64
)

// Errors from [Verify], besides [ErrMalformed].
var (
	// ErrUnsigned: the document carries no signature.
	ErrUnsigned = errors.New("directory: document is not signed")
	// ErrSignatures: fewer valid signatures from trusted authorities than the
	// threshold.
	ErrSignatures = errors.New("directory: not enough valid authority signatures")
	// ErrExpired: the document's validity ended (beyond the allowed clock
	// skew).
	ErrExpired = errors.New("directory: document expired")
	// ErrNotYetValid: the document's validity has not started (beyond the
	// allowed clock skew); the local clock may be wrong.
	ErrNotYetValid = errors.New("directory: document not yet valid")
)

// Signature is one authority's signature of a document.
type Signature struct {
	Authority ed25519.PublicKey
	Signature []byte
}

// Signed is an encoded document with its signatures.
type Signed struct {
	Document   []byte
	Signatures []Signature
}

// Sign signs an encoded document with an authority's key.
func Sign(document []byte, authority ed25519.PrivateKey) Signature {
	msg := append([]byte(signatureContext), document...)
	return Signature{
		Authority: authority.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(authority, msg),
	}
}

// MarshalBinary encodes the signed document.
func (s *Signed) MarshalBinary() ([]byte, error) {
	if len(s.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("directory: %d signatures, at most %d", len(s.Signatures), MaxSignatures)
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(signedMagic))
	b.AddUint8(signedVersion)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Document) })
	b.AddUint8(uint8(len(s.Signatures)))
	for _, sig := range s.Signatures {
		if len(sig.Authority) != ed25519.PublicKeySize || len(sig.Signature) != ed25519.SignatureSize {
			return nil, fmt.Errorf("directory: malformed signature by %x", sig.Authority)
		}
		b.AddBytes(sig.Authority)
		b.AddBytes(sig.Signature)
	}
	return b.Bytes()
}

// UnmarshalBinary decodes a signed document strictly. It does not verify the
// signatures or decode the document: see [Verify].
func (s *Signed) UnmarshalBinary(data []byte) error {
	in := cryptobyte.String(data)
	var magic []byte
	var version, count uint8
	var doc cryptobyte.String
	if !in.ReadBytes(&magic, len(signedMagic)) || string(magic) != signedMagic {
		return fmt.Errorf("%w: not a signed network document", ErrMalformed)
	}
	if !in.ReadUint8(&version) || version != signedVersion {
		return fmt.Errorf("%w: signed-document version %d, this node reads version %d", ErrMalformed, version, signedVersion)
	}
	if !in.ReadUint24LengthPrefixed(&doc) || !in.ReadUint8(&count) {
		return fmt.Errorf("%w: truncated signed document", ErrMalformed)
	}
	if int(count) > MaxSignatures {
		return fmt.Errorf("%w: %d signatures, at most %d", ErrMalformed, count, MaxSignatures)
	}
	out := Signed{Document: append([]byte(nil), doc...), Signatures: make([]Signature, count)}
	for i := range out.Signatures {
		var key, sig []byte
		if !in.ReadBytes(&key, ed25519.PublicKeySize) || !in.ReadBytes(&sig, ed25519.SignatureSize) {
			return fmt.Errorf("%w: signature %d truncated", ErrMalformed, i)
		}
		out.Signatures[i] = Signature{
			Authority: append(ed25519.PublicKey(nil), key...),
			Signature: append([]byte(nil), sig...),
		}
	}
	if !in.Empty() {
		return fmt.Errorf("%w: %d bytes after the signatures", ErrMalformed, len(in))
	}
	*s = out
	return nil
}

// Trust is what a node or client is configured with to accept documents.
type Trust struct {
	// Authorities are the directory authorities' public keys.
	Authorities []ed25519.PublicKey
	// Threshold is how many of them must have signed (at least 1).
	Threshold int
	// ClockSkew is how far the local clock may be off: a document is
	// accepted from ValidFrom − ClockSkew to ValidUntil + ClockSkew.
	ClockSkew time.Duration
}

// Verify decodes a signed document and returns it if at least
// trust.Threshold distinct configured authorities signed it and it is valid
// at now. Signatures by unknown keys are ignored; an invalid signature by a
// configured authority does not count.
func Verify(data []byte, trust Trust, now time.Time) (*Document, error) {
	d, err := VerifySignatures(data, trust)
	if err != nil {
		return nil, err
	}
	if now.After(d.ValidUntil.Add(trust.ClockSkew)) {
		return nil, fmt.Errorf("%w: epoch %d ended at %v and this host's clock says %v (%v of clock skew allowed)",
			ErrExpired, d.Epoch, d.ValidUntil, now.UTC().Truncate(time.Second), trust.ClockSkew)
	}
	if now.Before(d.ValidFrom.Add(-trust.ClockSkew)) {
		return nil, fmt.Errorf("%w: epoch %d starts at %v but this host's clock says %v: is the clock right? (%v of skew allowed)",
			ErrNotYetValid, d.Epoch, d.ValidFrom, now.UTC().Truncate(time.Second), trust.ClockSkew)
	}
	return d, nil
}

// VerifySignatures is Verify without the validity period: for a document
// fetched ahead of its epoch, whose times the caller checks itself.
func VerifySignatures(data []byte, trust Trust) (*Document, error) {
	if trust.Threshold < 1 || trust.Threshold > len(trust.Authorities) {
		return nil, fmt.Errorf("directory: threshold %d of %d authorities", trust.Threshold, len(trust.Authorities))
	}
	var s Signed
	if err := s.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	if len(s.Signatures) == 0 {
		return nil, ErrUnsigned
	}
	msg := append([]byte(signatureContext), s.Document...)
	valid := 0
	counted := make([]bool, len(trust.Authorities))
	for _, sig := range s.Signatures {
		for i, key := range trust.Authorities {
			if !counted[i] && key.Equal(sig.Authority) && ed25519.Verify(key, msg, sig.Signature) {
				counted[i] = true
				valid++
			}
		}
	}
	if valid < trust.Threshold {
		return nil, fmt.Errorf("%w: %d of the %d required", ErrSignatures, valid, trust.Threshold)
	}
	var d Document
	if err := d.UnmarshalBinary(s.Document); err != nil {
		return nil, err
	}
	return &d, nil
}
