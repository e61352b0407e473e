package expiry

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestSetting(t *testing.T) {
	e := Setting{TTL: time.Hour, SetAt: time.Date(2026, 11, 1, 0, 0, 0, 5, time.UTC)}
	got, err := Parse(e.Marshal())
	if err != nil || got != e {
		t.Fatalf("%+v came back as %+v (%v)", e, got, err)
	}
	for _, b := range [][]byte{{}, {2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, append(e.Marshal(), 0), {1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", b, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Setting{TTL: time.Minute, SetAt: time.Unix(1, 0)}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err == nil && !bytes.Equal(e.Marshal(), b) {
			t.Fatal("does not encode back")
		}
	})
}
