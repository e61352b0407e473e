package convey

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// testProof is a signed receipt's proof with the intermediary's card.
func testProof(t testing.TB) (*Proof, *identity.Card) {
	t.Helper()
	id, err := identity.Generate(testrand.New(9), [32]byte{1}, [32]byte{2}, when)
	if err != nil {
		t.Fatal(err)
	}
	card := id.Card()
	raw, err := card.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	text := "we accept the terms; \"quoted\" & <marked>"
	r := NewReceipt(SignedReceipt, Commit(salt, text), "a party in country X", when, id.Signing)
	return &Proof{Text: text, Salt: salt, Receipt: r, Card: raw}, card
}

// TestReceiptFile: the file is short, versioned, names its format, holds
// hex rather than lists of numbers, reads back to the same proof, and the
// proof read back verifies; a file of the first release still reads.
func TestReceiptFile(t *testing.T) {
	p, card := testProof(t)
	file, err := MarshalReceiptFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(file)
	for _, want := range []string{`"format": "backchannel conveyance receipt"`, `"version": 2`, `"conveyed_to": "a party in country X"`, `"time": "2026-11-01T12:00:00Z"`, `& <marked>`} {
		if !strings.Contains(s, want) {
			t.Errorf("the file lacks %s:\n%s", want, s)
		}
	}
	if lines := strings.Count(s, "\n"); lines > 30 || strings.Contains(s, "[") {
		t.Errorf("%d lines, or lists of numbers:\n%s", lines, s)
	}
	got, err := ParseReceiptFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("read back %+v, want %+v", got, p)
	}
	if err := got.Receipt.Verify(got.Text, got.Salt, card.SigningKey); err != nil {
		t.Fatal(err)
	}
	// The first release wrote {"version":1,"proof":<Proof in Go's encoding>}.
	v1, _ := json.Marshal(struct {
		Version int    `json:"version"`
		Proof   *Proof `json:"proof"`
	}{1, p})
	old, err := ParseReceiptFile(v1)
	if err != nil || old.Receipt.Verify(old.Text, old.Salt, card.SigningKey) != nil {
		t.Fatalf("a version 1 file: %v", err)
	}
	// An edited text still parses, and does not verify.
	edited, _ := ParseReceiptFile(bytes.Replace(file, []byte("we accept"), []byte("we reject"), 1))
	if err := edited.Receipt.Verify(edited.Text, edited.Salt, card.SigningKey); !errors.Is(err, ErrReceipt) {
		t.Fatalf("an edited text: %v", err)
	}
}

func TestReceiptFileRefused(t *testing.T) {
	p, _ := testProof(t)
	file, _ := MarshalReceiptFile(p)
	s := string(file)
	sig := hexField(t, file, "signature")
	for name, bad := range map[string]string{
		"not JSON":        "receipt",
		"another format":  strings.Replace(s, "conveyance receipt", "card", 1),
		"a later version": strings.Replace(s, `"version": 2`, `"version": 3`, 1),
		"unknown field":   strings.Replace(s, `"text"`, `"extra": 1, "text"`, 1),
		"short salt":      strings.Replace(s, hexField(t, file, "salt"), "0011", 1),
		"bad hex":         strings.Replace(s, sig, "zz"+sig[2:], 1),
		"bad time":        strings.Replace(s, "2026-11-01T12:00:00Z", "yesterday", 1),
		"bad card":        withField(t, file, "intermediary_card", "-----BEGIN BACKCHANNEL CARD-----\nnot a card\n-----END BACKCHANNEL CARD-----\n"),
	} {
		if _, err := ParseReceiptFile([]byte(bad)); !errors.Is(err, ErrReceiptFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// hexField is the value of a string field of a receipt file.
func hexField(t *testing.T, file []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	return m[name].(string)
}

// withField is a receipt file with one field's value replaced.
func withField(t *testing.T, file []byte, name, value string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	m[name] = value
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzParseReceiptFile(f *testing.F) {
	p, _ := testProof(f)
	file, _ := MarshalReceiptFile(p)
	f.Add(file)
	v1, _ := json.Marshal(struct {
		Version int    `json:"version"`
		Proof   *Proof `json:"proof"`
	}{1, p})
	f.Add(v1)
	p.Receipt.Signature, p.Card = nil, nil
	unsigned, _ := MarshalReceiptFile(p)
	f.Add(unsigned)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseReceiptFile(b)
		if err != nil {
			return
		}
		if got.Receipt == nil {
			t.Fatal("a proof without a receipt")
		}
		again, err := MarshalReceiptFile(got)
		if err != nil {
			return // a version 1 file may hold a card this version refuses
		}
		back, err := ParseReceiptFile(again)
		if err != nil || !reflect.DeepEqual(back.Receipt.Commitment, got.Receipt.Commitment) || back.Text != got.Text {
			t.Fatalf("a parsed file does not write back: %v", err)
		}
	})
}
