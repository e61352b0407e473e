package authority

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Admission is an authority's list of the node identity keys its operator
// approved; no other node ever enters a document it signs.
type Admission map[string]bool // hex identity key

// Admits reports whether the key is on the list.
func (a Admission) Admits(key ed25519.PublicKey) bool { return a[hex.EncodeToString(key)] }

// Tally keeps, of the descriptors the authorities hold for an epoch, those
// held by at least threshold of them — identical descriptors, byte for
// byte, counted together — and admitted by this authority. held[0] is this
// authority's own set; the others are what its peers sent. A node that gave
// different authorities different descriptors is kept under the version
// most of them hold (ties go to the smallest encoding), or dropped if no
// version reaches the threshold.
func Tally(epoch uint64, held [][][]byte, threshold int, admitted Admission) []*directory.Descriptor {
	type version struct {
		raw   []byte
		votes int
		d     *directory.Descriptor
	}
	byNode := map[string]map[string]*version{}
	for _, set := range held {
		seen := map[string]bool{} // one vote per authority and version
		for _, raw := range set {
			d, err := directory.ParseDescriptor(raw)
			if err != nil || d.Epoch != epoch || !admitted.Admits(d.IdentityKey) || seen[string(raw)] {
				continue
			}
			seen[string(raw)] = true
			node := string(d.IdentityKey)
			if byNode[node] == nil {
				byNode[node] = map[string]*version{}
			}
			v := byNode[node][string(raw)]
			if v == nil {
				v = &version{raw: raw, d: d}
				byNode[node][string(raw)] = v
			}
			v.votes++
		}
	}
	var out []*directory.Descriptor
	for _, versions := range byNode {
		var best *version
		for _, v := range versions {
			if best == nil || v.votes > best.votes || (v.votes == best.votes && bytes.Compare(v.raw, best.raw) < 0) {
				best = v
			}
		}
		if best.votes >= threshold {
			out = append(out, best.d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].IdentityKey, out[j].IdentityKey) < 0 })
	return out
}

// Build makes the document of an epoch from tallied descriptors,
// deterministically, so that every authority with the same inputs signs the
// same bytes: nodes sorted by identity key; providers as they declared
// themselves; mixes dealt to layers 1, 2, …, Layers, 1, … in that order.
// The epoch runs from start for length; each node's Sphinx key is the one
// its descriptor gives for the epoch, of the document's packet format.
func Build(epoch uint64, start time.Time, length time.Duration, params directory.Parameters, descriptors []*directory.Descriptor) (*directory.Document, error) {
	sorted := append([]*directory.Descriptor(nil), descriptors...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].IdentityKey, sorted[j].IdentityKey) < 0 })
	doc := &directory.Document{
		Epoch:      epoch,
		ValidFrom:  start.UTC().Truncate(time.Second),
		ValidUntil: start.UTC().Add(length).Truncate(time.Second),
		Parameters: params,
	}
	mixes := 0
	for _, d := range sorted {
		if d.Epoch != epoch {
			return nil, fmt.Errorf("authority: a descriptor of epoch %d in the document of epoch %d", d.Epoch, epoch)
		}
		keys, ok := d.Keys(params.Geometry.Scheme)
		if !ok {
			return nil, fmt.Errorf("authority: node %q offers no %v Sphinx key for the document of epoch %d", d.Name, params.Geometry.Scheme, epoch)
		}
		n := directory.Node{Name: d.Name, Role: d.Role, IdentityKey: d.IdentityKey, LinkKey: d.LinkKey, SphinxKey: keys.Current, Address: d.Address}
		if d.Role == directory.RoleMix {
			n.Layer = uint8(mixes%int(params.Layers)) + 1
			mixes++
		}
		doc.Nodes = append(doc.Nodes, n)
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("authority: the document of epoch %d: %w", epoch, err)
	}
	return doc, nil
}

// Combine merges the signatures that authorities made of the same encoded
// document into one signed document; a signature over other bytes (an
// authority that disagreed) is left out. It does not check the signatures:
// directory.Verify does, with the threshold.
func Combine(document []byte, signed []directory.Signed) *directory.Signed {
	out := &directory.Signed{Document: document}
	seen := map[string]bool{}
	for _, s := range signed {
		if !bytes.Equal(s.Document, document) {
			continue
		}
		for _, sig := range s.Signatures {
			if !seen[string(sig.Authority)] {
				seen[string(sig.Authority)] = true
				out.Signatures = append(out.Signatures, sig)
			}
		}
	}
	sort.Slice(out.Signatures, func(i, j int) bool {
		return bytes.Compare(out.Signatures[i].Authority, out.Signatures[j].Authority) < 0
	})
	return out
}
