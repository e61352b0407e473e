package wire

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFetchMessages(t *testing.T) {
	req := FetchRequest{AckUpTo: 77}
	b, _ := req.MarshalBinary()
	var got FetchRequest
	if err := got.UnmarshalBinary(b); err != nil || got != req {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]byte{nil, b[:8], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
		if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("request %x: %v", bad, err)
		}
	}

	reply := FetchReply{Index: 3, Seq: 12, Remaining: 5, Packet: []byte("sphinx")}
	b, err := reply.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var r FetchReply
	if err := r.UnmarshalBinary(b); err != nil || r.Index != 3 || r.Seq != 12 || r.Remaining != 5 || string(r.Packet) != "sphinx" {
		t.Fatalf("%+v %v", r, err)
	}
	empty, _ := FetchReply{Index: 0}.MarshalBinary()
	if err := r.UnmarshalBinary(empty); err != nil || r.Seq != 0 || len(r.Packet) != 0 {
		t.Fatalf("empty reply: %+v %v", r, err)
	}
	for name, bad := range map[string]FetchReply{
		"index":            {Index: FetchBatch},
		"seq without data": {Seq: 1},
		"data without seq": {Packet: []byte("x")},
	} {
		if _, err := bad.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if err := r.UnmarshalBinary(b[:len(b)-1]); !errors.Is(err, ErrMalformedFrame) {
		t.Errorf("truncated reply: %v", err)
	}
}

// FuzzFetchReply checks strict, canonical decoding of fetch replies and
// requests (the first byte of the input chooses which).
func FuzzFetchReply(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzFetchReply")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		if b[0]%2 == 0 {
			var r FetchRequest
			if err := r.UnmarshalBinary(b[1:]); err != nil {
				if !errors.Is(err, ErrMalformedFrame) {
					t.Fatal(err)
				}
				return
			}
			again, _ := r.MarshalBinary()
			if !bytes.Equal(again, b[1:]) {
				t.Fatal("request re-encodes differently")
			}
			return
		}
		var r FetchReply
		if err := r.UnmarshalBinary(b[1:]); err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatal(err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, b[1:]) {
			t.Fatalf("reply re-encodes differently: %v", err)
		}
	})
}

func TestDelivery(t *testing.T) {
	id := [16]byte{7}
	for _, d := range []Delivery{{Payload: []byte("hello")}, {SURBID: &id, Payload: []byte("reply")}, {}} {
		b, _ := d.MarshalBinary()
		var got Delivery
		if err := got.UnmarshalBinary(b); err != nil || string(got.Payload) != string(d.Payload) || (got.SURBID == nil) != (d.SURBID == nil) {
			t.Fatalf("%+v: %+v %v", d, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {3}, {2, 1, 2}} {
		var got Delivery
		if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

// FuzzDelivery checks that decoding never panics and re-encodes exactly.
func FuzzDelivery(f *testing.F) {
	if entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzDelivery")); err != nil || len(entries) == 0 {
		f.Fatalf("no committed seed corpus: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Delivery
		if err := d.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatal(err)
			}
			return
		}
		again, _ := d.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gives %x", b, again)
		}
	})
}

func TestRetention(t *testing.T) {
	b, _ := Retention{Seconds: 3600}.MarshalBinary()
	var r Retention
	if err := r.UnmarshalBinary(b); err != nil || r.Seconds != 3600 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range [][]byte{{}, {2, 0, 0, 0, 0, 0, 0, 0, 1}, {1, 0xff, 0, 0, 0, 0, 0, 0, 0}, append(b, 0)} {
		if err := r.UnmarshalBinary(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

func FuzzRetention(f *testing.F) {
	b, _ := Retention{Seconds: 60}.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Retention
		if r.UnmarshalBinary(b) == nil {
			again, _ := r.MarshalBinary()
			if string(again) != string(b) {
				t.Fatal("does not encode back")
			}
		}
	})
}
