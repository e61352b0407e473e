package convey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// ReceiptFileFormat names the receipt file format in its "format" field,
// and ReceiptFileVersion is its version.
const (
	ReceiptFileFormat  = "backchannel conveyance receipt"
	ReceiptFileVersion = 2
)

// receiptFile is the proof of conveyance as a file to hand to others
// (docs/client.md, "Conveyed messages and receipts"): JSON, one field per
// line, binary values in hex, the time in RFC 3339. Version 1 (the first
// release's) held the same values as Go's default encoding of Proof, with
// byte arrays as lists of numbers; ParseReceiptFile still reads it.
type receiptFile struct {
	Format       string `json:"format"`
	Version      int    `json:"version"`
	Text         string `json:"text"`
	Salt         string `json:"salt"`
	To           string `json:"conveyed_to"`
	Time         string `json:"time"`
	Intermediary string `json:"intermediary_key"`
	Commitment   string `json:"commitment"`
	Signature    string `json:"signature"`
	// Card is the intermediary's card as the sender holds it, for
	// information: a checker verifies against a card obtained themselves.
	Card string `json:"intermediary_card,omitempty"`
}

// MarshalReceiptFile writes p as a receipt file.
func MarshalReceiptFile(p *Proof) ([]byte, error) {
	if p.Receipt == nil {
		return nil, errors.New("convey: a proof without a receipt")
	}
	r := p.Receipt
	f := receiptFile{
		Format: ReceiptFileFormat, Version: ReceiptFileVersion, Text: p.Text, Salt: hex.EncodeToString(p.Salt[:]),
		To: r.To, Time: r.Time.UTC().Format(time.RFC3339), Intermediary: hex.EncodeToString(r.Intermediary),
		Commitment: hex.EncodeToString(r.Commitment[:]), Signature: hex.EncodeToString(r.Signature),
	}
	if len(p.Card) > 0 {
		card, err := identity.ParseCard(p.Card)
		if err != nil {
			return nil, err
		}
		text, err := card.MarshalText()
		if err != nil {
			return nil, err
		}
		f.Card = string(text)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrReceiptFile: the data is not a receipt file this version reads.
var ErrReceiptFile = errors.New("convey: not a receipt file")

// ParseReceiptFile reads a receipt file, of this version or version 1. It
// checks the form, not the signature: Receipt.Verify does, against a card
// the checker trusts.
func ParseReceiptFile(data []byte) (*Proof, error) {
	var probe struct {
		Format  string          `json:"format"`
		Version int             `json:"version"`
		Proof   json.RawMessage `json:"proof"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReceiptFile, err)
	}
	switch {
	case probe.Format == "" && probe.Version == 1 && probe.Proof != nil:
		return parseReceiptFileV1(probe.Proof)
	case probe.Format != ReceiptFileFormat:
		return nil, fmt.Errorf("%w: its format is %q", ErrReceiptFile, probe.Format)
	case probe.Version != ReceiptFileVersion:
		return nil, fmt.Errorf("%w: version %d, this program reads %d (and 1)", ErrReceiptFile, probe.Version, ReceiptFileVersion)
	}
	var f receiptFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReceiptFile, err)
	}
	p := &Proof{Text: f.Text, Receipt: &Receipt{To: f.To}}
	r := p.Receipt
	var err error
	field := func(name, value string, size int) []byte {
		b, herr := hex.DecodeString(value)
		if err == nil && (herr != nil || size > 0 && len(b) != size) {
			err = fmt.Errorf("%w: %s is not %d bytes of hex", ErrReceiptFile, name, size)
		}
		return b
	}
	copy(p.Salt[:], field("salt", f.Salt, SaltSize))
	copy(r.Commitment[:], field("commitment", f.Commitment, CommitmentSize))
	r.Intermediary = field("intermediary_key", f.Intermediary, ed25519.PublicKeySize)
	if f.Signature != "" { // empty for a deniable receipt, which proves nothing to others
		r.Signature = field("signature", f.Signature, ed25519.SignatureSize)
	}
	if err != nil {
		return nil, err
	}
	if r.Time, err = time.Parse(time.RFC3339, f.Time); err != nil {
		return nil, fmt.Errorf("%w: time %q: %v", ErrReceiptFile, f.Time, err)
	}
	if f.Card != "" {
		card, err := identity.ParseCardText([]byte(f.Card))
		if err != nil {
			return nil, fmt.Errorf("%w: intermediary_card: %v", ErrReceiptFile, err)
		}
		if p.Card, err = card.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseReceiptFileV1 reads the proof of a version 1 file.
func parseReceiptFileV1(raw json.RawMessage) (*Proof, error) {
	var p Proof
	if err := json.Unmarshal(raw, &p); err != nil || p.Receipt == nil {
		return nil, fmt.Errorf("%w: a version 1 file without its proof (%v)", ErrReceiptFile, err)
	}
	return &p, nil
}
