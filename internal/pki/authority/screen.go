package authority

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"sort"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Dropped is a descriptor Screen left out of a document, and why.
type Dropped struct {
	Key    ed25519.PublicKey
	Name   string
	Reason string
}

// OfFormat keeps, of tallied descriptors, those that offer a Sphinx key of
// the document's packet format. Upload refuses the others already; these
// came through a peer, or were taken before the format changed.
func OfFormat(descriptors []*directory.Descriptor, format sphinx.Scheme) (kept []*directory.Descriptor, dropped []Dropped) {
	for _, d := range descriptors {
		if offers(d, format) {
			kept = append(kept, d)
			continue
		}
		dropped = append(dropped, Dropped{Key: d.IdentityKey, Name: d.Name, Reason: fmt.Sprintf("it offers no %v Sphinx key, the network's packet format", format)})
	}
	return kept, dropped
}

func offers(d *directory.Descriptor, format sphinx.Scheme) bool {
	_, ok := d.Keys(format)
	return ok
}

// Screen keeps, of tallied descriptors, those that can stand together in
// one document, so that no node can stop the document by what it says of
// itself. A descriptor that passed ParseDescriptor has well-formed fields;
// what one node can still do to the document is claim a name or an
// address another node uses (Document.Validate refuses repeats). Tally
// has kept one descriptor per identity key, so dropping a descriptor
// drops everything that key uploaded for the epoch.
//
// The rule does not depend on the order of uploads (or a newcomer could
// claim a name first), only on the tallied set and the previous document,
// which every authority holds alike: of the descriptors that share a name
// (or an address), the node that held that name (address) in the previous
// document keeps it and the others are dropped; if none held it, all are
// dropped. A hostile node can therefore not take an established node's
// place, only keep a name or address nobody held from being used while
// it collides with it (its operator sees it in the log and takes it off
// the admission list). previous may be nil (the first document, or an
// authority that lost it): then every collision drops all its parties,
// and such an authority may vote for another document than its peers.
//
// Addresses are compared as written: two spellings of one endpoint do not
// collide here, and a node that uses another's address under another
// spelling only makes itself unreachable (the link handshake checks the
// key the document gives).
func Screen(descriptors []*directory.Descriptor, previous *directory.Document) (kept []*directory.Descriptor, dropped []Dropped) {
	byName := map[string][]*directory.Descriptor{}
	byAddress := map[string][]*directory.Descriptor{}
	for _, d := range descriptors {
		byName[d.Name] = append(byName[d.Name], d)
		byAddress[d.Address] = append(byAddress[d.Address], d)
	}
	reasons := map[string]string{} // identity key → why it is dropped
	held := func(d *directory.Descriptor, same func(n *directory.Node) bool) bool {
		if previous == nil {
			return false
		}
		n := previous.Node(d.IdentityKey)
		return n != nil && same(n)
	}
	judge := func(groups map[string][]*directory.Descriptor, what string, same func(d *directory.Descriptor, n *directory.Node) bool) {
		for value, group := range groups {
			if len(group) < 2 {
				continue
			}
			var holder *directory.Descriptor
			for _, d := range group {
				if held(d, func(n *directory.Node) bool { return same(d, n) }) {
					holder = d
				}
			}
			for _, d := range group {
				if d == holder {
					continue
				}
				reason := fmt.Sprintf("%d nodes claim the %s %q, and none held it in the previous document", len(group), what, value)
				if holder != nil {
					reason = fmt.Sprintf("it claims the %s %q, which node %x held in the previous document", what, value, []byte(holder.IdentityKey))
				}
				if _, ok := reasons[string(d.IdentityKey)]; !ok {
					reasons[string(d.IdentityKey)] = reason
				}
			}
		}
	}
	judge(byName, "name", func(d *directory.Descriptor, n *directory.Node) bool { return n.Name == d.Name })
	judge(byAddress, "address", func(d *directory.Descriptor, n *directory.Node) bool { return n.Address == d.Address })
	for _, d := range descriptors {
		if reason, ok := reasons[string(d.IdentityKey)]; ok {
			dropped = append(dropped, Dropped{Key: d.IdentityKey, Name: d.Name, Reason: reason})
			continue
		}
		kept = append(kept, d)
	}
	sort.Slice(dropped, func(i, j int) bool { return bytes.Compare(dropped[i].Key, dropped[j].Key) < 0 })
	return kept, dropped
}
