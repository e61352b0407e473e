package client

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backchannel/backchannel/internal/endtoend/identity"
)

// Feature is an application protocol that rides on the client's sessions:
// an introduction, a conveyed message, a mutual interest check, a
// conversation's disappearing-messages setting. It lives in a package of
// its own (internal/features/…) and is registered with the client before
// Run; the client hands it the messages of its content kinds. Its messages
// travel like texts — fragmented, acknowledged, retransmitted, delivered
// once — but are not shown in the inbox.
//
// The client calls a feature with its lock held, through a Tx: a feature
// does no network wait in these calls. A feature's own operations (the
// user's) take the lock through Client.Do. A feature's state in memory is
// touched only inside those calls; its state at rest is in the vault, in
// Tables of its own.
type Feature interface {
	// Kinds are the content kinds whose messages the feature handles.
	Kinds() []ContentKind
	// Receive handles a message of one of its kinds, with its ID, from a
	// contact. An error refuses the message: it is counted and logged,
	// and still acknowledged (a retry would be as bad).
	Receive(tx *Tx, from Contact, kind ContentKind, body []byte, id [16]byte) error
}

// Ticker is a feature with deadlines: Tick is called at every
// housekeeping, after each fetch of the mailbox.
type Ticker interface {
	Tick(tx *Tx)
}

// DeliveryWatcher is a feature that learns when a message it queued with
// a reference (Tx.QueueRef) was acknowledged by its recipient.
//
// Delivered is called at least once for each such message, and may be
// called again for it: Register calls it for every delivered message the
// outbox still holds, since a crash may have come between the client
// saving the delivery and the feature saving what it did about it. It
// must do its work once (keep, under the reference, that it did).
type DeliveryWatcher interface {
	Delivered(tx *Tx, to Contact, ref [16]byte)
}

// Register adds a feature. It must be called before Run; a content kind
// another feature handles, or that is not a feature's (Text, File), is
// refused.
func (c *Client) Register(f Feature) error {
	c.mu.Lock()
	defer c.unlock()
	for _, k := range f.Kinds() {
		if k < firstFeatureKind {
			return fmt.Errorf("client: content kind %v is not a feature's", k)
		}
		if c.features[k] != nil {
			return fmt.Errorf("client: content kind %v has a feature already", k)
		}
	}
	for _, k := range f.Kinds() {
		c.features[k] = f
	}
	kinds := map[string]bool{}
	for _, k := range f.Kinds() {
		kinds[k.String()] = true
	}
	for _, m := range c.outbox.delivered(kinds) {
		c.delivered(m)
	}
	return nil
}

// Do runs f with the client's lock held: a feature's operation. What f
// changes is published to readers when it returns.
func (c *Client) Do(f func(tx *Tx) error) error {
	c.mu.Lock()
	defer c.unlock()
	if err := c.stopped(); err != nil {
		return err
	}
	return f(c.tx())
}

func (c *Client) tx() *Tx { return &Tx{c: c, now: c.cfg.Clock.Now()} }

// dispatch hands a received message of a feature's kind to the feature;
// c.mu is held.
func (c *Client) dispatch(ct *contact, content Content, id [16]byte) error {
	f := c.features[content.Kind]
	if f == nil {
		return fmt.Errorf("%w: no feature handles content kind %v", ErrMalformed, content.Kind)
	}
	return f.Receive(c.tx(), ct.public(), content.Kind, content.Body, id)
}

// tick is the features' housekeeping; c.mu is held.
func (c *Client) tick() {
	seen := map[Feature]bool{}
	for _, f := range c.features {
		if t, ok := f.(Ticker); ok && !seen[f] {
			seen[f] = true
			t.Tick(c.tx())
		}
	}
}

// delivered tells the feature that queued a message with a reference that
// it was delivered; c.mu is held.
func (c *Client) delivered(m *outgoing) {
	if m.rec.Ref == ([16]byte{}) {
		return
	}
	for k, f := range c.features {
		if k.String() != m.rec.Kind {
			continue
		}
		if w, ok := f.(DeliveryWatcher); ok {
			w.Delivered(c.tx(), m.to.public(), m.rec.Ref)
		}
		return
	}
}

// Contact is a contact as a feature sees it.
type Contact struct {
	// Key is the contact's identity key in hex: how features name a
	// contact in their records.
	Key  string
	Name string
	Card *identity.Card
	// Session is the session's ID (SHA-256 of the Initial that set it
	// up), once a session is usable; nil before.
	Session []byte
	// Expiry and ExpirySetAt are the conversation's disappearing-messages
	// setting.
	Expiry      time.Duration
	ExpirySetAt time.Time
}

// public is the contact as features see it; c.mu is held. The session's
// part comes from its shown state, so that a feature never waits for a
// packet being sealed.
func (ct *contact) public() Contact {
	shown := ct.shown.Load()
	p := Contact{Key: ct.key, Name: ct.rec.Name, Card: shown.card, Expiry: ct.rec.Expiry, ExpirySetAt: ct.rec.ExpirySetAt}
	if len(shown.id) > 0 {
		p.Session = shown.id
	}
	return p
}

// Tx is the client as a feature sees it while the client's lock is held:
// in Client.Do, or in a call from the client. It must not be kept.
type Tx struct {
	c   *Client
	now time.Time
}

// Now is the client's time.
func (tx *Tx) Now() time.Time { return tx.now }

// Rand is the client's source of secret randomness.
func (tx *Tx) Rand() io.Reader { return tx.c.cfg.Rand }

// Log is the client's logger.
func (tx *Tx) Log() *slog.Logger { return tx.c.log }

// Store is the client's vault, for the feature's Tables.
func (tx *Tx) Store() Store { return Store{tx.c.store} }

// Self is the user's own card.
func (tx *Tx) Self() *identity.Card { return tx.c.self }

// SigningKey is the user's Ed25519 key (a signed conveyance receipt).
func (tx *Tx) SigningKey() ed25519.PrivateKey { return tx.c.id.Signing }

// Contact finds a contact by name.
func (tx *Tx) Contact(name string) (Contact, error) {
	ct := tx.c.byName(name)
	if ct == nil {
		return Contact{}, fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	return ct.public(), nil
}

// ContactByKey finds a contact by identity key (hex).
func (tx *Tx) ContactByKey(key string) (Contact, bool) {
	ct := tx.c.contacts[key]
	if ct == nil {
		return Contact{}, false
	}
	return ct.public(), true
}

// NameOf names a contact by identity key.
func (tx *Tx) NameOf(key string) string { return tx.c.nameOf(key) }

// Queuing says how a feature's message is queued.
type Queuing struct {
	// About says what the message is, for the user's list of sent messages
	// ("interest check: …"); it is kept in the local state only, never
	// sent.
	About string
	// Ref, if set, is a reference the feature's Delivered hears of once
	// the recipient acknowledged the message.
	Ref [16]byte
	// Urgent: the message has a deadline (an interest check's step, a
	// receipt) and its fragments go out ahead of other messages', so that
	// a large file being sent does not make it late. Urgent messages are
	// small; they are not held back by the window of fragments in flight.
	Urgent bool
	// DraftedBy and ApprovedBy name the officers who drafted the message
	// and, under dual control, approved it; kept in the local state only.
	DraftedBy, ApprovedBy string
}

// Queue sends a message of the feature's kind to a contact.
func (tx *Tx) Queue(to Contact, kind ContentKind, body []byte, q Queuing) error {
	if kind < firstFeatureKind {
		return fmt.Errorf("client: a feature queued a message of kind %v", kind)
	}
	ct := tx.c.contacts[to.Key]
	if ct == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, to.Name)
	}
	_, err := tx.c.queue(ct, Content{Kind: kind, Body: body}, q)
	return err
}

// Excerpt is the first words of a text, quoted, for saying what a message
// is: at most about 40 characters, cut at a word, on one line.
func Excerpt(text string) string {
	const most = 40
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= most {
		return strconv.Quote(text)
	}
	runes := []rune(text)[:most]
	if i := strings.LastIndexByte(string(runes), ' '); i > most/2 {
		return strconv.Quote(string(runes)[:i] + "…")
	}
	return strconv.Quote(string(runes) + "…")
}

// AddContact adds the owner of a verified card as a contact called name,
// or a free variant of it ("name (2)").
func (tx *Tx) AddContact(name string, card *identity.Card) error {
	if err := card.Verify(); err != nil {
		return err
	}
	return tx.c.addContact(tx.c.freeName(name), card)
}

// SetExpiry records a conversation's disappearing-messages setting, with
// a notice for the user (empty: none).
func (tx *Tx) SetExpiry(to Contact, d time.Duration, setAt time.Time, notice string) error {
	ct := tx.c.contacts[to.Key]
	if ct == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, to.Name)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.rec.Expiry, ct.rec.ExpirySetAt = d, setAt
	if notice != "" {
		ct.rec.Notice = notice
	}
	tx.c.notify()
	return tx.c.saveContact(ct)
}

// Received returns a received message's record as features see it.
func (tx *Tx) Received(id [16]byte) (ReceivedMessage, error) {
	var rec inRecord
	if err := inRecords.get(tx.c.store, id, &rec); err != nil {
		return ReceivedMessage{}, err
	}
	return ReceivedMessage{From: rec.From, Conveyed: rec.Conveyed, Convey: rec.Convey}, nil
}

// ReceivedMessage is what a feature learns of a message in the inbox.
type ReceivedMessage struct {
	From     string // the contact's key
	Conveyed bool
	Convey   [16]byte // the conveyance to answer, for a conveyed message
}

// Conveyed is a message an intermediary passed on, for the inbox: the
// intermediary's label of the sender, its note, and the conveyance ID.
type Conveyed struct {
	Label, Note string
	ID          [16]byte
}

// DeliverConveyed puts a conveyed text, received as message id from the
// intermediary, in the user's inbox.
func (tx *Tx) DeliverConveyed(from Contact, id [16]byte, text string, cv Conveyed) error {
	rec := inRecord{Version: StateVersion, ID: id, From: from.Key, Kind: Text.String(), Body: []byte(text), Received: tx.now.UTC(),
		Conveyed: true, Label: cv.Label, Note: cv.Note, Convey: cv.ID}
	if err := tx.c.inbox.add(rec); err != nil {
		return err
	}
	tx.c.notify()
	return nil
}

// Changed tells readers that the feature changed what the user sees.
func (tx *Tx) Changed() { tx.c.notify() }

// ContactName names a contact by identity key, from the view: for a
// feature's reads, without the client's lock.
func (c *Client) ContactName(key string) string { return c.view.Load().nameOf(key) }

// ContactCard returns a contact's card by identity key, from the view.
func (c *Client) ContactCard(key string) (*identity.Card, bool) {
	k, ok := c.view.Load().known[key]
	return k.card, ok
}

// Store is the client's vault, for features' Tables; reads are safe
// without the client's lock, writes happen in a Tx.
func (c *Client) Store() Store { return Store{c.store} }

// Store is the client's vault as features see it.
type Store struct{ s store }

// Table is a feature's kind of record in the vault, keyed by a 16-byte
// ID, under a label prefix of the feature's own ("intro/"). Records are
// versioned JSON (a field "version", StateVersion).
type Table[T any] struct{ t table[T] }

// NewTable makes a feature's table. Its prefix must be unique: tables.go
// lists the client's own.
func NewTable[T any](prefix string) Table[T] { return Table[T]{table[T]{prefix}} }

// Put stores a record.
func (t Table[T]) Put(s Store, id [16]byte, rec T) error { return t.t.put(s.s, id, rec) }

// Get reads a record.
func (t Table[T]) Get(s Store, id [16]byte) (T, error) {
	var rec T
	err := t.t.get(s.s, id, &rec)
	return rec, err
}

// Exists reports whether a record is stored.
func (t Table[T]) Exists(s Store, id [16]byte) bool { return t.t.exists(s.s, id) }

// All reads every record, in label order.
func (t Table[T]) All(s Store) ([]T, error) { return t.t.all(s.s) }

// ParseID reads an ID the user gave (32 hex digits) for what it names.
func ParseID(id, what string) ([16]byte, error) {
	b, err := parseHexID(id)
	if err != nil {
		return [16]byte{}, fmt.Errorf("client: %q is not %s ID", id, what)
	}
	return b, nil
}

func parseHexID(id string) ([16]byte, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return [16]byte{}, errors.New("not a 16-byte hex ID")
	}
	return [16]byte(b), nil
}
