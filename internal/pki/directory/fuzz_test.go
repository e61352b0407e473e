package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// The seed corpora under testdata/fuzz/ hold valid documents and signed
// documents (made from testDocument) and truncations of them.

func checkCorpus(f *testing.F, name string) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
	if err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus for %s: %v", name, err)
	}
}

// FuzzDocument checks that the decoder never panics, fails only with
// ErrMalformed, and that what it accepts re-encodes to the same bytes (the
// encoding is canonical, which signatures rely on).
func FuzzDocument(f *testing.F) {
	checkCorpus(f, "FuzzDocument")
	for _, s := range sphinx.Schemes {
		data, err := testDocumentOf(f, 5, s).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Document
		if err := d.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not wrapping ErrMalformed: %v", err)
			}
			return
		}
		again, err := d.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted document does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
	})
}

// FuzzVerify feeds arbitrary signed documents to Verify with a 1-of-1 trust:
// no panic, and only the documented errors.
func FuzzVerify(f *testing.F) {
	checkCorpus(f, "FuzzVerify")
	a := authority(1)
	trust := Trust{Authorities: []ed25519.PublicKey{a.Public().(ed25519.PublicKey)}, Threshold: 1, ClockSkew: time.Minute}
	now := epochStart.Add(time.Minute)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Verify(data, trust, now)
		if err != nil {
			for _, e := range []error{ErrMalformed, ErrUnsigned, ErrSignatures, ErrExpired, ErrNotYetValid} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("undocumented error: %v", err)
		}
		if d == nil || d.Validate() != nil {
			t.Fatal("Verify returned an invalid document")
		}
	})
}
