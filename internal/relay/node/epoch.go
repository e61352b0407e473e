package node

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/replay"
)

// epochState is what a node holds for one epoch: the document, its own
// entry, the packet format the document names, the Sphinx key and the
// replay filter of that key.
type epochState struct {
	doc    *directory.Document
	signed []byte
	self   *directory.Node
	format *sphinx.Format
	key    *sphinx.PrivateKey
	replay *replay.Filter
	// graceUntil, for the previous epoch, is when its key stops being
	// tried.
	graceUntil time.Time
}

// epochs is the node's current epoch, during a grace period after a
// change the previous one, and the next epoch's document once the
// authorities have published it. It is replaced whole (atomically), never
// changed in place.
type epochs struct {
	cur, prev  *epochState
	next       *directory.Document
	nextSigned []byte
	// ready is the next epoch's state made ahead (Prepare), so that the
	// change itself only swaps pointers.
	ready *epochState
}

// openEpoch opens the replay filter of an epoch's key.
func (n *Node) openEpoch(doc *directory.Document, signed []byte, key *sphinx.PrivateKey) (*epochState, error) {
	self := doc.Node(n.cfg.Identity.Public().(ed25519.PublicKey))
	if self == nil {
		return nil, fmt.Errorf("node: this node's identity key is not in the network document of epoch %d", doc.Epoch)
	}
	format, err := sphinx.New(doc.Parameters.Geometry)
	if err != nil {
		return nil, fmt.Errorf("node: the network document of epoch %d: %w", doc.Epoch, err)
	}
	if key.Public().Scheme() != format.Geometry().Scheme {
		return nil, fmt.Errorf("node: the Sphinx key for epoch %d is of the %v format, and the document names %v", doc.Epoch, key.Public().Scheme(), format.Geometry().Scheme)
	}
	path := filepath.Join(n.cfg.DataDir, fmt.Sprintf("replay-epoch-%d.log", doc.Epoch))
	f, err := replay.Open(path, n.cfg.ReplayExpected, 1e-6, n.cfg.Rand)
	if err != nil {
		return nil, err
	}
	return &epochState{doc: doc, signed: signed, self: self, format: format, key: key, replay: f}, nil
}

// Install makes doc (with its signed encoding) the node's document from now
// on, with key its Sphinx key, which the node owns from now on (and wipes).
// The previous epoch's key is still tried for grace, for packets made before
// the change, then forgotten; the epoch before that is closed and its key
// wiped now. The document may change the packet format (see
// geometryFollows), not the rest of the geometry.
func (n *Node) Install(signed []byte, doc *directory.Document, key *sphinx.PrivateKey, grace time.Duration) error {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	old := n.epochs.Load()
	if err := geometryFollows(old.cur.doc, doc); err != nil {
		key.Wipe()
		return err
	}
	if doc.Epoch <= old.cur.doc.Epoch {
		key.Wipe()
		return fmt.Errorf("node: the document of epoch %d does not follow epoch %d", doc.Epoch, old.cur.doc.Epoch)
	}
	var cur, ready *epochState
	switch r := old.ready; {
	case r != nil && r.doc.Epoch == doc.Epoch && r.key.Public().Equal(key.Public()) && bytes.Equal(r.signed, signed):
		cur = r // made ahead by Prepare
		key.Wipe()
	case r != nil && r.doc.Epoch > doc.Epoch:
		ready = r // still ahead
	case r != nil:
		r.replay.Close() // made for a document not used
		r.key.Wipe()
	}
	if cur == nil {
		var err error
		if cur, err = n.openEpoch(doc, signed, key); err != nil {
			key.Wipe()
			return err
		}
	}
	prev := *old.cur
	prev.graceUntil = n.cfg.Clock.Now().Add(grace)
	now := &epochs{cur: cur, prev: &prev, ready: ready}
	if old.next != nil && old.next.Epoch > doc.Epoch {
		now.next, now.nextSigned = old.next, old.nextSigned
	}
	n.epochs.Store(now)
	// The epoch before the previous one: no worker can still be holding
	// it a whole epoch later, so it is closed and its key wiped.
	if dropped := old.prev; dropped != nil {
		if err := dropped.replay.Close(); err != nil {
			n.log.Error("closing an old replay log", "epoch", dropped.doc.Epoch, "err", err)
		}
		dropped.key.Wipe()
	}
	n.metrics.epoch.Set(float64(doc.Epoch))
	n.log.Info("new epoch", "epoch", doc.Epoch, "layer", cur.self.Layer, "grace", grace)
	return nil
}

// geometryFollows checks that the document next may follow cur: a network
// changes its packet format (the scheme: X25519 or X-Wing packets) at an
// epoch boundary, the nodes and clients following it with packets of both
// formats in flight for a grace period, but not its hops or payload
// length, which the messages queued, fragmented and stored on the way
// depend on.
func geometryFollows(cur, next *directory.Document) error {
	g, h := cur.Parameters.Geometry, next.Parameters.Geometry
	if g.MaxHops != h.MaxHops || g.UserPayloadLength != h.UserPayloadLength {
		return fmt.Errorf("node: the document of epoch %d changes the packet geometry from %v to %v; only the packet format may change in place",
			next.Epoch, g, h)
	}
	return nil
}

// SetNext makes doc (with its signed encoding) the next epoch's document,
// which a provider hands to clients that ask for it ahead of the change.
func (n *Node) SetNext(signed []byte, doc *directory.Document) {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	old := n.epochs.Load()
	if doc.Epoch <= old.cur.doc.Epoch {
		return
	}
	n.epochs.Store(&epochs{cur: old.cur, prev: old.prev, next: doc, nextSigned: signed, ready: old.ready})
}

// Prepare makes the state of the next epoch ahead of its start (its replay
// filter, tens of MiB touched page by page), so that Install at the
// epoch's start only swaps pointers: made at the change itself, it made
// nodes on a loaded machine more than a second late, after their clients
// had moved on. It also sets doc as the next document (SetNext). The node
// owns key from now on.
func (n *Node) Prepare(signed []byte, doc *directory.Document, key *sphinx.PrivateKey) error {
	if cur := n.epochs.Load(); doc.Epoch <= cur.cur.doc.Epoch || (cur.ready != nil && cur.ready.doc.Epoch == doc.Epoch && cur.ready.key.Public().Equal(key.Public())) {
		key.Wipe()
		n.SetNext(signed, doc)
		return nil
	}
	st, err := n.openEpoch(doc, signed, key)
	if err != nil {
		key.Wipe()
		return err
	}
	n.installMu.Lock()
	defer n.installMu.Unlock()
	old := n.epochs.Load()
	if doc.Epoch <= old.cur.doc.Epoch {
		st.replay.Close()
		key.Wipe()
		return nil
	}
	if old.ready != nil {
		old.ready.replay.Close()
		old.ready.key.Wipe()
	}
	n.epochs.Store(&epochs{cur: old.cur, prev: old.prev, next: doc, nextSigned: signed, ready: st})
	return nil
}

// Document returns the node's current document.
func (n *Node) Document() *directory.Document { return n.epochs.Load().cur.doc }

// Epoch returns the epoch of the node's current document.
func (n *Node) Epoch() uint64 { return n.epochs.Load().cur.doc.Epoch }

// documents returns the documents held: current, previous (in its grace
// period or not), next.
func (e *epochs) documents() []*directory.Document {
	out := []*directory.Document{e.cur.doc}
	if e.prev != nil {
		out = append(out, e.prev.doc)
	}
	if e.next != nil {
		out = append(out, e.next)
	}
	return out
}

// all returns the epochs held, current first, then the previous one and
// the one made ready.
func (e *epochs) all() []*epochState {
	out := []*epochState{e.cur}
	if e.prev != nil {
		out = append(out, e.prev)
	}
	if e.ready != nil {
		out = append(out, e.ready)
	}
	return out
}
