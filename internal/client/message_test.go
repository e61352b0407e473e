package client

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestContentRoundTrip(t *testing.T) {
	for _, c := range []Content{
		{Kind: Text, Body: []byte("open to talks?")},
		{Kind: Text},
		{Kind: File, Name: "terms.pdf", Body: bytes.Repeat([]byte{0xff}, 5000)},
		{Kind: Text, Body: []byte("this disappears"), TTL: time.Hour},
		{Kind: Text, Body: []byte("sent at noon"), Sent: time.Date(2026, 12, 5, 12, 0, 0, 1e6, time.UTC)},
		{Kind: capabilities, Body: []byte{capabilitiesVersion, contentVersion}},
	} {
		for _, version := range []int{oldContentVersion, contentVersion} {
			b, err := c.marshal(version)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseContent(b)
			if err != nil || got.Kind != c.Kind || got.Name != c.Name || !bytes.Equal(got.Body, c.Body) || got.TTL != c.TTL {
				t.Fatalf("%+v came back as %+v (%v)", c, got, err)
			}
			// Version 2 carries no sending time.
			if want := map[int]time.Time{oldContentVersion: {}, contentVersion: c.Sent}[version]; !got.Sent.Equal(want) {
				t.Fatalf("version %d: sent %v came back as %v", version, c.Sent, got.Sent)
			}
		}
	}
}

func TestContentRefused(t *testing.T) {
	for name, c := range map[string]Content{
		"text with a name":  {Kind: Text, Name: "x", Body: []byte("hi")},
		"text not UTF-8":    {Kind: Text, Body: []byte{0xff, 0xfe}},
		"file with no name": {Kind: File, Body: []byte("data")},
		"long file name":    {Kind: File, Name: string(bytes.Repeat([]byte("a"), MaxNameLength+1))},
		"unknown kind":      {Kind: 9},
		"capabilities":      {Kind: capabilities, Body: []byte{capabilitiesVersion}},
	} {
		if _, err := c.marshal(contentVersion); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	// Version 1 (no time to live) is still read.
	if c, err := parseContent([]byte{1, 1, 0, 'h', 'i'}); err != nil || string(c.Body) != "hi" || c.TTL != 0 {
		t.Fatalf("version 1: %+v %v", c, err)
	}
	for name, b := range map[string][]byte{
		"short":          {1, 1},
		"version":        {4, 1, 0},
		"short v3":       {3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"sent too late":  {3, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0},
		"truncated name": {1, 2, 5, 'a'},
		"kind":           {1, 7, 0},
		"short v2":       {2, 1, 0, 0, 0},
		"ttl too long":   {2, 1, 0xff, 0xff, 0xff, 0xff, 0},
	} {
		if _, err := parseContent(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRecords(t *testing.T) {
	if r, err := parseRecord([]byte{recordHello, helloRestored}); err != nil || r.reason != helloRestored {
		t.Fatalf("hello: %+v %v", r, err)
	}
	if r, err := parseRecord([]byte{recordFragment, 1, 2, 3}); err != nil || !bytes.Equal(r.fragment, []byte{1, 2, 3}) {
		t.Fatalf("fragment: %+v %v", r, err)
	}
	for _, b := range [][]byte{{}, {recordHello}, {recordHello, 9}, {recordHello, 1, 0}, {7}} {
		if _, err := parseRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", b, err)
		}
	}
}

func FuzzParseContent(f *testing.F) {
	for _, c := range []Content{{Kind: Text, Body: []byte("hi")}, {Kind: File, Name: "a.txt", Body: []byte("data")}} {
		for _, version := range []int{oldContentVersion, contentVersion} {
			b, _ := c.marshal(version)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseContent(b)
		if err != nil {
			return
		}
		again, err := c.marshal(contentVersion)
		if err != nil {
			t.Fatalf("decoded content does not encode: %v", err)
		}
		if d, err := parseContent(again); err != nil || d.Kind != c.Kind || d.Name != c.Name || d.TTL != c.TTL || !bytes.Equal(d.Body, c.Body) || !d.Sent.Equal(c.Sent) {
			t.Fatalf("content changed in a round trip: %v", err)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte{recordHello, helloNew})
	f.Add([]byte{recordFragment, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) { parseRecord(b) })
}

// FuzzStateRecord: a damaged or foreign state record is refused with an
// error, never a panic, whatever its JSON holds.
func FuzzStateRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"name":"bob","card":"AAE=","verified":true,"added":"2026-11-01T00:00:00Z","session":{"ratchet":"AA==","ad":"AA==","initiated":true,"confirmed":false,"established":"2026-11-01T00:00:00Z"}}`))
	f.Add([]byte(`{"version":1,"id":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"to":"ab","kind":"text","size":2,"created":"2026-11-01T00:00:00Z","acked":[true],"status":"sent"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"officers":[{"name":"first officer","slot":"0011223344556677","roles":["reader","administrator"],"added":"2026-12-06T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"ID":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"op":"send","about":"send: to bob","payload":"eyJ9","needs":"releaser","drafted_by":"clerk","drafted":"2026-12-06T00:00:00Z","state":"pending"}`))
	f.Add([]byte(`{"version":1,"identity":false,"contacts":["ab"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o1 officersRecord
		decodeRecord("officers", b, &o1)
		var d draftRecord
		decodeRecord("draft/x", b, &d)
		var dc dualControlRecord
		decodeRecord("dual-control", b, &dc)
		var c contactRecord
		decodeRecord("contact/x", b, &c)
		var o outRecord
		decodeRecord("out/x", b, &o)
		var r receivedRecord
		decodeRecord("received", b, &r)
	})
}

func FuzzReadBackup(f *testing.F) {
	f.Add([]byte("bcbackup\x01\x00\x05hello"))
	f.Add([]byte("bcbackup\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		readBackup(b, []byte("passphrase"), bytes.NewReader(make([]byte, 64)))
	})
}
