package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/authority"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// FollowConfig makes a node follow the directory authorities: upload its
// descriptors ahead, fetch each epoch's document once published, and move
// to it when its epoch starts.
type FollowConfig struct {
	// URLs are the authorities' HTTP API base URLs.
	URLs []string
	// Trust is what a document must satisfy: the authorities' keys, the
	// threshold and the allowed clock skew.
	Trust directory.Trust
	// Keys keeps the node's per-epoch Sphinx keys.
	Keys *EpochKeys
	// Self is what the node declares of itself: name, role, identity and
	// link keys, address. Epochs and Sphinx keys are filled in for each
	// descriptor, which Identity signs.
	Self     directory.Descriptor
	Identity ed25519.PrivateKey
	// DocumentPath is where the current document is written at each
	// change, for a restart.
	DocumentPath string
	HTTP         *http.Client
}

// follower is the node's side of the directory protocol. Everything it
// does is driven by the current document's times: an epoch lasts as long
// as the current one, and epoch e starts where e−1 ends.
type follower struct {
	*authorities
	n *Node
	// changeMu makes one epoch change at a time: both loops may find one
	// due.
	changeMu sync.Mutex
}

func newFollower(cfg FollowConfig, n *Node) *follower {
	return &follower{authorities: newAuthorities(cfg, n.cfg.Clock, n.log), n: n}
}

// authorities is what the node does with the directory authorities:
// signing and uploading its descriptors, fetching documents (through
// authority.Client), and saying each problem once.
type authorities struct {
	cfg    FollowConfig
	client *authority.Client
	log    *slog.Logger

	mu   sync.Mutex
	said map[string]bool // warnings already logged, so that each is said once
}

func newAuthorities(cfg FollowConfig, clk clock.Clock, log *slog.Logger) *authorities {
	a := &authorities{cfg: cfg, log: log, said: map[string]bool{}}
	a.client = &authority.Client{URLs: cfg.URLs, Trust: cfg.Trust, HTTP: cfg.HTTP, Clock: clk, Say: a.once}
	return a
}

// schedule gives the epoch at t and epoch starts from the current
// document.
type schedule struct {
	base   uint64
	start  time.Time
	length time.Duration
}

func scheduleOf(doc *directory.Document) schedule {
	return schedule{base: doc.Epoch, start: doc.ValidFrom, length: doc.ValidUntil.Sub(doc.ValidFrom)}
}

func (s schedule) epochAt(t time.Time) uint64 {
	if t.Before(s.start) {
		return s.base
	}
	return s.base + uint64(t.Sub(s.start)/s.length)
}

func (s schedule) startOf(e uint64) time.Time {
	return s.start.Add(time.Duration(e-s.base) * s.length)
}

// run follows the authorities until ctx is done. Two loops: one moves the
// node to each new epoch at the very moment it starts; the other, every
// sixteenth of an epoch, talks to the authorities (uploads, fetching the
// next document, erasing old keys). They are apart so that slow requests
// to the authorities never make the node late for an epoch change: under
// load, uploads to three authorities took over a second, and a node that
// changed epochs after its clients dropped their packets as bad MACs.
func (f *follower) run(ctx context.Context) {
	var changes sync.WaitGroup
	changes.Add(1)
	go func() { defer changes.Done(); f.runChanges(ctx) }()
	defer changes.Wait()
	clk := f.n.cfg.Clock
	for {
		now := clk.Now()
		f.step(ctx, now)
		sched := scheduleOf(f.n.Document())
		if !f.sleepUntil(ctx, now.Add(sched.length/16)) {
			return
		}
	}
}

// runChanges moves the node to each epoch when it starts.
func (f *follower) runChanges(ctx context.Context) {
	for {
		now := f.n.cfg.Clock.Now()
		f.change(ctx, now)
		sched := scheduleOf(f.n.Document())
		next := sched.startOf(sched.epochAt(now) + 1)
		if !next.After(now) {
			next = now.Add(time.Second) // no document for this epoch yet: try again
		}
		if !f.sleepUntil(ctx, next) {
			return
		}
	}
}

func (f *follower) sleepUntil(ctx context.Context, t time.Time) bool {
	timer := f.n.cfg.Clock.NewTimerAt(t)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C():
		return true
	}
}

// change moves the node to the epoch of now if it is not there yet.
func (f *follower) change(ctx context.Context, now time.Time) {
	f.changeMu.Lock()
	defer f.changeMu.Unlock()
	es := f.n.epochs.Load()
	if e := scheduleOf(es.cur.doc).epochAt(now); e > es.cur.doc.Epoch {
		f.advance(ctx, e, es, now)
	}
}

// step does what is due at now: move to a new epoch if that has not
// happened yet, upload descriptors, fetch the next document, erase keys
// whose grace period is over and close links to next hops that left.
func (f *follower) step(ctx context.Context, now time.Time) {
	f.change(ctx, now)
	es := f.n.epochs.Load()
	cur := es.cur.doc
	sched := scheduleOf(cur)
	e := sched.epochAt(now)
	f.uploadAhead(ctx, sched, now)
	if (es.next == nil || es.next.Epoch <= e) && !now.Before(sched.startOf(e).Add(sched.length*3/4)) {
		if signed, doc, err := f.fetch(ctx, e+1); err == nil {
			f.prepare(signed, doc)
		}
	}
	if es.prev != nil && !now.Before(es.prev.graceUntil) {
		if err := f.cfg.Keys.EraseBefore(cur.Epoch); err != nil {
			f.log.Error("erasing old Sphinx keys", "err", err)
		}
		f.n.retirePeers()
	}
}

// advance moves the node to epoch e, with the next document it holds or
// one fetched now; without one it stays on the current document, and says
// so once it has ended.
func (f *follower) advance(ctx context.Context, e uint64, es *epochs, now time.Time) {
	cur := es.cur.doc
	signed, doc := es.nextSigned, es.next
	if doc == nil || doc.Epoch != e {
		var err error
		if signed, doc, err = f.fetch(ctx, e); err != nil {
			skew := f.cfg.Trust.ClockSkew
			if now.After(cur.ValidUntil.Add(skew)) {
				f.once(fmt.Sprintf("expired %d", cur.Epoch), slog.LevelError, "the network document has ended and no authority has published a newer one: "+
					"clients and nodes cannot use this network until one is (are the authorities down, or is this host's clock fast?)",
					"epoch", cur.Epoch, "ended", cur.ValidUntil, "clock_skew", skew)
				f.n.metrics.documentExpired.Set(1)
			} else {
				f.once(fmt.Sprintf("missing %d", e), slog.LevelWarn, "no document for the new epoch yet; the current one is used until it ends",
					"epoch", e, "current", cur.Epoch, "ends", cur.ValidUntil.Add(skew))
			}
			return
		}
	}
	if err := f.install(signed, doc, cur); err != nil {
		f.once(fmt.Sprintf("install %d", doc.Epoch), slog.LevelError, "cannot move to the new epoch", "epoch", doc.Epoch, "err", err)
		return
	}
	f.n.metrics.documentExpired.Set(0)
}

// prepare holds the next document and, if it lists this node with the key
// it keeps for that epoch, makes the epoch's state ahead of its start.
func (f *follower) prepare(signed []byte, doc *directory.Document) {
	key, err := f.checkKey(doc)
	if err != nil {
		f.n.SetNext(signed, doc) // for the clients; the change will say what is wrong
		return
	}
	if err := f.n.Prepare(signed, doc, key); err != nil {
		f.once(fmt.Sprintf("prepare %d", doc.Epoch), slog.LevelError, "cannot prepare the next epoch", "epoch", doc.Epoch, "err", err)
		f.n.SetNext(signed, doc)
	}
}

// checkKey returns the Sphinx key this node keeps for doc's epoch, if doc
// lists the node with its public half.
func (f *follower) checkKey(doc *directory.Document) (*sphinx.PrivateKey, error) {
	self := doc.Node(f.n.cfg.Identity.Public().(ed25519.PublicKey))
	if self == nil {
		return nil, fmt.Errorf("this node is not in the document of epoch %d (was it removed from the authorities' admission lists?)", doc.Epoch)
	}
	return f.cfg.Keys.ForDocument(doc, self)
}

// install checks that the node's stored key is the one doc gives it, then
// installs doc and saves it for a restart.
func (f *follower) install(signed []byte, doc, cur *directory.Document) error {
	key, err := f.checkKey(doc)
	if err != nil {
		return err
	}
	if err := f.n.Install(signed, doc, key, cur.Grace()); err != nil {
		return err
	}
	if f.cfg.DocumentPath != "" {
		if err := renameio.WriteFile(f.cfg.DocumentPath, signed, 0o644); err != nil {
			f.log.Error("saving the network document", "err", err)
		}
	}
	return nil
}

// uploadAhead uploads the node's descriptors for the next two epochs:
// the one after the current epoch until the authorities freeze its
// descriptors half-way through the current one, and the one after that.
func (a *authorities) uploadAhead(ctx context.Context, sched schedule, now time.Time) {
	e := sched.epochAt(now)
	if now.Before(sched.startOf(e).Add(sched.length / 2)) {
		a.upload(ctx, e+1)
	}
	a.upload(ctx, e+2)
}

// upload sends the node's descriptor for epoch x to every authority. It
// is sent again at every step, not once: an authority restarted meanwhile
// (to change its admission list, say) has lost what it held, and the same
// descriptor (Ed25519 signatures are deterministic) costs an authority
// nothing to take twice.
func (a *authorities) upload(ctx context.Context, x uint64) {
	raw, err := a.descriptor(x)
	if err != nil {
		a.once(fmt.Sprintf("descriptor %d", x), slog.LevelError, "cannot make a descriptor", "epoch", x, "err", err)
		return
	}
	for _, u := range a.cfg.URLs {
		if err := a.client.Upload(ctx, u, raw); err != nil {
			a.once(fmt.Sprintf("upload %d %s %v", x, u, err), slog.LevelWarn, "an authority did not take the descriptor", "epoch", x, "authority", u, "err", err)
			continue
		}
		a.log.Debug("descriptor uploaded", "epoch", x, "authority", u)
	}
}

// descriptor signs the node's descriptor for epoch x, with its Sphinx keys
// of every packet format for x and x+1 (made now if they do not exist yet).
func (a *authorities) descriptor(x uint64) ([]byte, error) {
	d := a.cfg.Self
	d.Epoch = x
	keys, err := a.cfg.Keys.Descriptor(x)
	if err != nil {
		return nil, err
	}
	d.SphinxKeys = keys
	return d.Sign(a.cfg.Identity)
}

// fetch gets the published document of epoch x.
func (a *authorities) fetch(ctx context.Context, x uint64) ([]byte, *directory.Document, error) {
	return a.client.Document(ctx, fmt.Sprint(x), x)
}

// once logs a message the first time its key is seen.
func (a *authorities) once(key string, level slog.Level, msg string, args ...any) {
	a.mu.Lock()
	said := a.said[key]
	a.said[key] = true
	if len(a.said) > 1000 {
		clear(a.said)
	}
	a.mu.Unlock()
	if !said {
		a.log.Log(context.Background(), level, msg, args...)
	}
}

// join waits until the authorities' current document has this node in it,
// with a Sphinx key the node holds, uploading its descriptors meanwhile:
// for a node that is new, or was away for longer than its saved document
// lasted. It checks again every sixteenth of an epoch.
func join(ctx context.Context, cfg FollowConfig, clk clock.Clock, log *slog.Logger) ([]byte, *directory.Document, error) {
	a := newAuthorities(cfg, clk, log)
	self := cfg.Identity.Public().(ed25519.PublicKey)
	skew := cfg.Trust.ClockSkew
	for {
		now := clk.Now()
		wait := time.Second
		raw, doc, err := a.client.Document(ctx, "current", 0)
		switch {
		case err != nil:
			a.once("join "+err.Error(), slog.LevelWarn, "waiting for the authorities' current document", "err", err)
		case now.Before(doc.ValidFrom.Add(-skew)) || now.After(doc.ValidUntil.Add(skew)):
			a.once(fmt.Sprintf("join clock %d", doc.Epoch), slog.LevelError, "the authorities' current document is not valid by this host's clock: is the clock right?",
				"epoch", doc.Epoch, "valid_from", doc.ValidFrom, "valid_until", doc.ValidUntil, "clock_skew", skew)
		default:
			if n := doc.Node(self); n != nil {
				if key, err := cfg.Keys.ForDocument(doc, n); err == nil {
					key.Wipe()
					return raw, doc, nil
				}
			}
			sched := scheduleOf(doc)
			a.uploadAhead(ctx, sched, now)
			a.once(fmt.Sprintf("join %d", doc.Epoch), slog.LevelInfo, "waiting to join: this node is not in the current network document; "+
				"its descriptors for the next epochs are with the authorities", "epoch", doc.Epoch)
			wait = max(sched.length/16, time.Second)
		}
		t := clk.NewTimerAt(now.Add(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C():
		}
	}
}
