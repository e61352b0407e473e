package wire

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDocumentChunks(t *testing.T) {
	doc := bytes.Repeat([]byte("network document "), 500) // 8,500 bytes
	chunks, err := DocumentChunks(doc, 2600)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 4 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var a DocumentAssembler
	for i, b := range chunks {
		var c DocumentChunk
		if err := c.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		done, err := a.Add(c)
		if err != nil || done != (i == len(chunks)-1) {
			t.Fatalf("chunk %d: done %v, %v", i, done, err)
		}
	}
	if !bytes.Equal(a.Document(), doc) {
		t.Fatal("reassembled document differs")
	}
	var b DocumentAssembler
	var c DocumentChunk
	c.UnmarshalBinary(chunks[1])
	if _, err := b.Add(c); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("out-of-order chunk: %v", err)
	}
	if _, err := DocumentChunks(nil, 2600); err == nil {
		t.Fatal("an empty document was chunked")
	}
}

// FuzzDocumentChunk checks that chunk decoding never panics, fails only
// with ErrMalformedFrame, and keeps its bounds.
func FuzzDocumentChunk(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzDocumentChunk")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c DocumentChunk
		if err := c.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatal(err)
			}
			return
		}
		if uint64(c.Offset)+uint64(len(c.Data)) > uint64(c.Total) || len(c.Data) == 0 {
			t.Fatalf("chunk out of bounds: %d+%d of %d", c.Offset, len(c.Data), c.Total)
		}
		var a DocumentAssembler
		a.Add(c)
	})
}
