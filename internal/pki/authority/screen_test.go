package authority

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// descriptorsOf returns the nodes' descriptors for epoch e.
func descriptorsOf(ns []node, e uint64) []*directory.Descriptor {
	var out []*directory.Descriptor
	for _, n := range ns {
		d := n.d
		d.Epoch = e
		out = append(out, &d)
	}
	return out
}

func namesOf(ds []*directory.Descriptor) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	slices.Sort(out)
	return out
}

// TestScreen: of colliding descriptors, the node that held the name (or
// address) in the previous document keeps it and the others are dropped;
// with no holder, all are dropped; the result does not depend on the order
// of the descriptors.
func TestScreen(t *testing.T) {
	ns := nodes(t, 2, 4) // provider-0, provider-1, mix-2 … mix-5
	previous, err := Build(6, start, length, params, descriptorsOf(ns[:5], 6))
	if err != nil {
		t.Fatal(err)
	}
	ds := descriptorsOf(ns, 7)
	ds[5].Name = ds[2].Name       // mix-5, a newcomer, claims mix-2's name
	ds[4].Address = "new:1"       // mix-4 moved …
	ds[3].Address = ds[4].Address // … and mix-3 claims its new address
	kept, dropped := Screen(ds, previous)
	if got, want := namesOf(kept), []string{"mix-2", "provider-0", "provider-1"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v (dropped %+v)", got, want, dropped)
	}
	if len(dropped) != 3 {
		t.Fatalf("dropped %+v, want the newcomer claiming a held name and both claimants of an address nobody held", dropped)
	}
	for _, d := range dropped {
		if d.Reason == "" || len(d.Key) == 0 {
			t.Fatalf("a dropped descriptor with no key or reason: %+v", d)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(ds)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, _ := Screen(shuffled, previous)
		if !slices.Equal(namesOf(again), namesOf(kept)) {
			t.Fatalf("another order kept %v, not %v", namesOf(again), namesOf(kept))
		}
	}
	if kept, _ := Screen(ds, nil); !slices.Equal(namesOf(kept), []string{"provider-0", "provider-1"}) {
		t.Fatalf("with no previous document kept %v; every party to a collision should go", namesOf(kept))
	}
	if kept, dropped := Screen(descriptorsOf(ns, 7), previous); len(kept) != len(ns) || len(dropped) != 0 {
		t.Fatalf("without collisions kept %d of %d, dropped %+v", len(kept), len(ns), dropped)
	}
}

// TestHostileDescriptorCannotStopDocuments: three authorities, threshold
// two. An admitted node uploads, for the next epochs, a descriptor with
// another node's name, then one with another node's address, each time
// before its victim uploads (to every authority, or to one only). Every
// epoch still gets its document, the victim stays listed and the hostile
// node is left out.
func TestHostileDescriptorCannotStopDocuments(t *testing.T) {
	ns := nodes(t, 2, 4)
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	servers, pubs, _ := authorities(t, 3, 2, admitAll(ns), clk, nil)
	honest, hostile := ns[:5], ns[5]
	victim := ns[2]
	upload(t, servers, honest, 2)
	stepAll(servers, clk, nil)
	for _, step := range []struct {
		e      uint64
		attack func(d *directory.Descriptor)
		to     []*Server
	}{
		{3, func(d *directory.Descriptor) { d.Name = victim.d.Name }, servers},
		{4, func(d *directory.Descriptor) { d.Address = victim.d.Address }, servers},
		{5, func(d *directory.Descriptor) { d.Name, d.Address = victim.d.Name, victim.d.Address }, servers[:1]},
	} {
		toFreeze(servers, step.e)
		h := hostile
		h.d.Epoch = step.e
		step.attack(&h.d)
		raw, err := h.d.Sign(h.key)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range step.to {
			if err := s.Upload(raw); err != nil {
				t.Fatalf("epoch %d: the hostile descriptor was refused at upload (%v): the screen is what is tested", step.e, err)
			}
		}
		upload(t, servers, honest, step.e)
		stepAll(servers, clk, nil)
		var first []byte
		for i, s := range servers {
			data, ok := s.Document(step.e)
			if !ok {
				t.Fatalf("epoch %d: authority %d published no document", step.e, i)
			}
			doc, err := verify(t, data, pubs, 2, s.Start(step.e))
			if err != nil {
				t.Fatalf("epoch %d: %v", step.e, err)
			}
			if n := doc.Node(victim.d.IdentityKey); n == nil || n.Name != victim.d.Name || n.Address != victim.d.Address {
				t.Fatalf("epoch %d: the victim is not listed as itself: %+v", step.e, n)
			}
			if doc.Node(hostile.d.IdentityKey) != nil {
				t.Fatalf("epoch %d: the hostile node is listed", step.e)
			}
			if first == nil {
				first = data
			} else if !bytes.Equal(first, data) {
				t.Fatalf("epoch %d: authorities published different documents", step.e)
			}
		}
	}
}
