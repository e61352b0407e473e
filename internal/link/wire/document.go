package wire

import (
	"encoding/binary"
	"fmt"
)

// Clients get the network document through their provider: a
// FrameDocumentRequest is answered with the signed document (as the
// directory package encodes it) cut into FrameDocumentChunk frames. The
// client checks the signatures itself; the provider is only a carrier.
//
// The request's body is empty, asking for the current document, or the one
// byte DocumentNext, asking for the next epoch's document if the provider
// already holds it (the current one otherwise: the client tells them apart
// by their epochs). A provider of the first version ignores the body and
// sends the current document, which a client takes as "no next one yet".

// DocumentNext is the body of a request for the next epoch's document.
const DocumentNext = 1

// MaxDocumentSize bounds a document sent over a link.
const MaxDocumentSize = 1 << 24

// DocumentChunk is the body of a FrameDocumentChunk.
type DocumentChunk struct {
	// Total is the length of the whole signed document.
	Total uint32
	// Offset is where Data starts in it.
	Offset uint32
	Data   []byte
}

// documentChunkOverhead is version, total, offset, data length.
const documentChunkOverhead = 1 + 4 + 4 + 2

// DocumentChunks cuts a signed document into chunk bodies that fit frames
// of frameSize.
func DocumentChunks(document []byte, frameSize int) ([][]byte, error) {
	if len(document) == 0 || len(document) > MaxDocumentSize {
		return nil, fmt.Errorf("wire: a document of %d bytes cannot be sent", len(document))
	}
	room := min(frameSize-FrameOverhead-documentChunkOverhead, 0xffff)
	var out [][]byte
	for off := 0; off < len(document); off += room {
		end := min(off+room, len(document))
		b := make([]byte, 0, documentChunkOverhead+end-off)
		b = append(b, fetchVersion)
		b = binary.BigEndian.AppendUint32(b, uint32(len(document)))
		b = binary.BigEndian.AppendUint32(b, uint32(off))
		b = binary.BigEndian.AppendUint16(b, uint16(end-off))
		out = append(out, append(b, document[off:end]...))
	}
	return out, nil
}

// UnmarshalBinary decodes a chunk strictly; Data aliases b.
func (c *DocumentChunk) UnmarshalBinary(b []byte) error {
	if len(b) < documentChunkOverhead || b[0] != fetchVersion {
		return fmt.Errorf("%w: document chunk", ErrMalformedFrame)
	}
	out := DocumentChunk{Total: binary.BigEndian.Uint32(b[1:5]), Offset: binary.BigEndian.Uint32(b[5:9])}
	n := int(binary.BigEndian.Uint16(b[9:11]))
	if len(b) != documentChunkOverhead+n || n == 0 {
		return fmt.Errorf("%w: document chunk says %d bytes, has %d", ErrMalformedFrame, n, len(b)-documentChunkOverhead)
	}
	if out.Total == 0 || out.Total > MaxDocumentSize || uint64(out.Offset)+uint64(n) > uint64(out.Total) {
		return fmt.Errorf("%w: document chunk at %d+%d of %d", ErrMalformedFrame, out.Offset, n, out.Total)
	}
	out.Data = b[documentChunkOverhead:]
	*c = out
	return nil
}

// DocumentAssembler puts a document back together from its chunks, which
// must arrive in order.
type DocumentAssembler struct {
	buf []byte
}

// Add adds a chunk and reports whether the document is complete.
func (a *DocumentAssembler) Add(c DocumentChunk) (bool, error) {
	if a.buf == nil {
		a.buf = make([]byte, 0, c.Total)
	}
	if int(c.Offset) != len(a.buf) || int(c.Total) != cap(a.buf) {
		return false, fmt.Errorf("%w: document chunk at %d of %d, expected %d of %d", ErrMalformedFrame, c.Offset, c.Total, len(a.buf), cap(a.buf))
	}
	a.buf = append(a.buf, c.Data...)
	return len(a.buf) == cap(a.buf), nil
}

// Document returns the assembled document.
func (a *DocumentAssembler) Document() []byte { return a.buf }
