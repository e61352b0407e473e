package authority

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var (
	start  = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	length = time.Hour
	params = directory.Parameters{
		Layers: 3, MeanDelay: 50 * time.Millisecond, SendRate: 2, LoopRate: 0.5, DropRate: 0.5, MixLoopRate: 0.5,
		PollInterval: time.Second, Geometry: sphinx.DefaultGeometry,
	}
)

// node is a node's key and its descriptor for an epoch.
type node struct {
	key ed25519.PrivateKey
	d   directory.Descriptor
}

func nodes(t testing.TB, providers, mixes int) []node {
	t.Helper()
	var out []node
	for i := range providers + mixes {
		seed := make([]byte, 32)
		testrand.New(byte(i), 1).Read(seed)
		key := ed25519.NewKeyFromSeed(seed)
		d := directory.Descriptor{Epoch: 7, Role: directory.RoleMix, Name: fmt.Sprintf("mix-%d", i), IdentityKey: key.Public().(ed25519.PublicKey),
			Address: fmt.Sprintf("10.0.0.%d:3000", i+1)}
		if i < providers {
			d.Role, d.Name = directory.RoleProvider, fmt.Sprintf("provider-%d", i)
		}
		testrand.New(byte(i), 2).Read(d.LinkKey[:])
		d.SphinxKeys = testSphinxKeys(t, byte(i), sphinx.Schemes...)
		out = append(out, node{key: key, d: d})
	}
	return out
}

// testSphinxKeys makes a descriptor's Sphinx keys of the given schemes.
func testSphinxKeys(t testing.TB, seed byte, schemes ...sphinx.Scheme) []directory.SphinxKeys {
	t.Helper()
	slices.Sort(schemes)
	var out []directory.SphinxKeys
	for _, s := range schemes {
		var pair [2]*sphinx.PublicKey
		for i := range pair {
			var secret [sphinx.SecretLength]byte
			testrand.New(seed, byte(3+i), byte(s)).Read(secret[:])
			key, err := sphinx.NewPrivateKey(s, &secret)
			if err != nil {
				t.Fatal(err)
			}
			pair[i] = key.Public()
		}
		out = append(out, directory.SphinxKeys{Current: pair[0], Next: pair[1]})
	}
	return out
}

func signed(t testing.TB, ns []node) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range ns {
		raw, err := n.d.Sign(n.key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func admitAll(ns []node) Admission {
	a := Admission{}
	for _, n := range ns {
		a[hex.EncodeToString(n.d.IdentityKey)] = true
	}
	return a
}

// TestTally: three authorities, threshold two. A descriptor held by two or
// three is kept; by one, dropped; a node not on the admission list never
// enters, whoever holds it; a descriptor for another epoch is ignored.
func TestTally(t *testing.T) {
	ns := nodes(t, 2, 4)
	raw := signed(t, ns)
	admitted := admitAll(ns[:5]) // ns[5] is not admitted
	held := [][][]byte{
		{raw[0], raw[1], raw[2], raw[3], raw[5]},
		{raw[0], raw[1], raw[2], raw[4], raw[5]},
		{raw[0], raw[1], raw[5]},
	}
	got := Tally(7, held, 2, admitted)
	var names []string
	for _, d := range got {
		names = append(names, d.Name)
	}
	want := map[string]bool{"provider-0": true, "provider-1": true, "mix-2": true}
	if len(got) != len(want) {
		t.Fatalf("kept %v", names)
	}
	for _, n := range names {
		if !want[n] {
			t.Fatalf("kept %v", names)
		}
	}
	if len(Tally(8, held, 2, admitted)) != 0 {
		t.Fatal("descriptors of epoch 7 kept for epoch 8")
	}
}

// TestTwoVersions: a node that gave authorities different descriptors is
// kept under the version the threshold holds.
func TestTwoVersions(t *testing.T) {
	ns := nodes(t, 1, 0)
	a := signed(t, ns)[0]
	ns[0].d.Address = "10.9.9.9:3000"
	b := signed(t, ns)[0]
	got := Tally(7, [][][]byte{{a}, {b}, {b}}, 2, admitAll(ns))
	if len(got) != 1 || got[0].Address != "10.9.9.9:3000" {
		t.Fatalf("kept %+v", got)
	}
	if got := Tally(7, [][][]byte{{a}, {b}, {}}, 2, admitAll(ns)); len(got) != 0 {
		t.Fatalf("kept a node no version of which reached the threshold: %+v", got)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	ns := nodes(t, 2, 6)
	ds := Tally(7, [][][]byte{signed(t, ns)}, 1, admitAll(ns))
	doc, err := Build(7, start, length, params, ds)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := doc.MarshalBinary()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		again, err := Build(7, start, length, params, ds)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := again.MarshalBinary(); !bytes.Equal(b, want) {
			t.Fatal("the same descriptors in another order give another document")
		}
	}
	perLayer := map[uint8]int{}
	for _, n := range doc.Nodes {
		if n.Role == directory.RoleMix {
			perLayer[n.Layer]++
		}
	}
	if perLayer[1] != 2 || perLayer[2] != 2 || perLayer[3] != 2 {
		t.Fatalf("mixes per layer: %v", perLayer)
	}
	// Too few mixes for the layers: a clear error, no document.
	if _, err := Build(7, start, length, params, ds[:2]); err == nil {
		t.Fatal("built a document with empty layers")
	}
}

// TestThresholdSignatures plays three authorities (threshold two) over the
// same descriptors: two agree and sign the same document; the third
// disagrees (another mean delay) and signs another. Combined, the two
// agreeing signatures make a document that verifies; the disagreeing one
// is left out; one signature alone, a forged one, or an expired epoch is
// refused with a clear error.
func TestThresholdSignatures(t *testing.T) {
	ns := nodes(t, 2, 3)
	raw := signed(t, ns)
	var keys []ed25519.PrivateKey
	var trust directory.Trust
	for i := range 3 {
		seed := make([]byte, 32)
		testrand.New(byte(i), 9).Read(seed)
		keys = append(keys, ed25519.NewKeyFromSeed(seed))
		trust.Authorities = append(trust.Authorities, keys[i].Public().(ed25519.PublicKey))
	}
	trust.Threshold = 2
	var docs [][]byte
	var sigs []directory.Signed
	for i, key := range keys {
		p := params
		if i == 2 {
			p.MeanDelay = time.Second // the one that disagrees
		}
		doc, err := Build(7, start, length, p, Tally(7, [][][]byte{raw, raw, raw}, 2, admitAll(ns)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := doc.MarshalBinary()
		docs = append(docs, b)
		sigs = append(sigs, directory.Signed{Document: b, Signatures: []directory.Signature{directory.Sign(b, key)}})
	}
	if !bytes.Equal(docs[0], docs[1]) || bytes.Equal(docs[0], docs[2]) {
		t.Fatal("the agreeing authorities built different documents, or the disagreeing one the same")
	}
	combined := Combine(docs[0], sigs)
	if len(combined.Signatures) != 2 {
		t.Fatalf("%d signatures combined, want the 2 that agree", len(combined.Signatures))
	}
	data, _ := combined.MarshalBinary()
	if _, err := directory.Verify(data, trust, start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	alone, _ := Combine(docs[2], sigs).MarshalBinary()
	if _, err := directory.Verify(alone, trust, start.Add(time.Minute)); !errors.Is(err, directory.ErrSignatures) {
		t.Fatalf("one signature: %v", err)
	}
	forged := Combine(docs[0], sigs)
	forged.Signatures[0].Signature = bytes.Clone(forged.Signatures[0].Signature)
	forged.Signatures[0].Signature[0] ^= 1
	fdata, _ := forged.MarshalBinary()
	if _, err := directory.Verify(fdata, trust, start.Add(time.Minute)); err == nil {
		t.Fatal("a forged signature passed")
	}
	if _, err := directory.Verify(data, trust, start.Add(2*length)); !errors.Is(err, directory.ErrExpired) {
		t.Fatalf("an expired epoch: %v", err)
	}
}

func TestBundle(t *testing.T) {
	raw := signed(t, nodes(t, 1, 2))
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	b, err := SignBundle(7, raw, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBundle(b, 7, key.Public().(ed25519.PublicKey))
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], raw[2]) {
		t.Fatalf("%d descriptors, %v", len(got), err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
	if _, err := ParseBundle(b, 7, other.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("a bundle passed for another authority")
	}
	if _, err := ParseBundle(b, 8, key.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("a bundle passed for another epoch")
	}
	for _, i := range []int{0, 20, len(b) / 2, len(b) - 1} {
		bad := bytes.Clone(b)
		bad[i] ^= 1
		if _, err := ParseBundle(bad, 7, key.Public().(ed25519.PublicKey)); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	b, _ := SignBundle(7, signed(f, nodes(f, 1, 1)), key)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseBundle(data, 7, key.Public().(ed25519.PublicKey))
	})
}
