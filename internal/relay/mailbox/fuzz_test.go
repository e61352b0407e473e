package mailbox

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzRecord feeds arbitrary keys and values to the record decoder: a
// damaged record is an error, never a panic, and a decoded one encodes back
// to the same bytes.
func FuzzRecord(f *testing.F) {
	f.Add(seqKey(1), encodeRecord(time.Unix(1700000000, 5), []byte("a packet")))
	f.Add(seqKey(0), []byte{})
	f.Add([]byte{1, 2, 3}, make([]byte, 8))
	f.Add(seqKey(1<<63), bytes.Repeat([]byte{0xff}, 9))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		m, err := decodeRecord(key, value)
		if err != nil {
			if len(key) == 8 && len(value) >= 8 {
				t.Fatalf("a well-sized record refused: %v", err)
			}
			return
		}
		if binary.BigEndian.Uint64(key) != m.Seq || !bytes.Equal(seqKey(m.Seq), key) {
			t.Fatalf("sequence %d from key %x", m.Seq, key)
		}
		if again := encodeRecord(m.Received, m.Packet); !bytes.Equal(again, value) {
			t.Fatalf("re-encoded %x, stored %x", again, value)
		}
		if len(m.Packet) > 0 && len(value) > 8 {
			value[8]++ // the message must not alias bbolt's memory
			if m.Packet[0] == value[8] {
				t.Fatal("the packet aliases the stored value")
			}
		}
	})
}
