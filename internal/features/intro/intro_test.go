package intro

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, m := range []Message{
		&Introduction{ID: [IDSize]byte{1}, Label: "a party in country X", Note: "they asked me to put you in touch", Card: []byte{1, 2, 3}},
		&Introduction{ID: [IDSize]byte{2}, Label: "B", Card: []byte{9}},
		&Answer{ID: [IDSize]byte{3}, Accept: true},
		&Answer{ID: [IDSize]byte{4}},
		&Done{ID: [IDSize]byte{5}},
	} {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%+v came back as %+v (%v)", m, got, err)
		}
	}
	// Accepting and declining look alike: same size.
	yes, _ := Marshal(&Answer{Accept: true})
	no, _ := Marshal(&Answer{})
	if len(yes) != len(no) {
		t.Fatal("an acceptance and a refusal differ in size")
	}
}

func TestRefused(t *testing.T) {
	if _, err := Marshal(&Introduction{Label: "", Card: []byte{1}}); err == nil {
		t.Fatal("an introduction without a label")
	}
	good, _ := Marshal(&Answer{Accept: true})
	for name, b := range map[string][]byte{
		"empty":    {},
		"version":  append([]byte{2}, good[1:]...),
		"type":     append([]byte{1, 7}, good[2:]...),
		"answer 2": append(bytes.Clone(good[:len(good)-1]), 2),
		"trailing": append(bytes.Clone(good), 0),
		"short":    good[:5],
	} {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range []Message{
		&Introduction{ID: [IDSize]byte{1}, Label: "a party in country X", Note: "n", Card: []byte{1, 2, 3}},
		&Answer{ID: [IDSize]byte{3}, Accept: true},
		&Done{ID: [IDSize]byte{5}},
	} {
		b, _ := Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Marshal(m)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed message does not encode back: %v", err)
		}
	})
}
