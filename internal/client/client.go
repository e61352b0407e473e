package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/fragment"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/endtoend/session"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Link is the client's link to its provider: clientlink.Link over the
// network, a recording fake in tests of the schedule.
type Link interface {
	Send(packet []byte) (uint64, error)
	Fetch(ctx context.Context) ([]clientlink.Fetched, int, error)
	FetchDocument(ctx context.Context, next bool) ([]byte, error)
	SetRetention(d time.Duration) error
	Close() error
}

// Config configures a client.
type Config struct {
	// Dir is the state directory (a vault).
	Dir        string
	Passphrase []byte
	// VaultParams are the passphrase hashing parameters of a new vault;
	// zero takes vault.DefaultParams.
	VaultParams vault.Params
	// Clock defaults to the real clock.
	Clock clock.Clock
	// Rand is the source of secret randomness: keys, SURBs, packets.
	Rand io.Reader
	// ScheduleSeed seeds the schedule's randomness (Poisson gaps, routes,
	// per-hop delays, retransmission jitter); zero draws it from Rand.
	// Tests fix it.
	ScheduleSeed [32]byte
	// MaxAttempts is how many times a fragment is sent before its message
	// is marked failed; zero takes DefaultMaxAttempts.
	MaxAttempts int
	// MaxChecksPerDay limits the mutual interest checks a contact may ask
	// in a day; zero takes DefaultMaxChecksPerDay.
	MaxChecksPerDay int
	// Dial opens the link to the provider; nil dials it over TCP.
	Dial   func(ctx context.Context, n Network, key wire.Keypair, frameSize int) (Link, error)
	Logger *slog.Logger
}

// DefaultMaxAttempts is the default number of times a fragment is sent.
const DefaultMaxAttempts = 10

// Client is a user's client. Its methods may be called from any goroutine.
type Client struct {
	cfg   Config
	store store
	log   *slog.Logger

	mu       sync.Mutex
	profile  profileRecord
	id       *identity.Identity
	linkKey  wire.Keypair
	guard    *session.Guard
	contacts map[string]*contact // by identity key hex
	out      []*outgoing         // in creation order
	outByID  map[[16]byte]*outgoing
	received receivedRecord
	reasm    *fragment.Reassembler
	doc      *directory.Document
	next     *directory.Document // the next epoch's, once the provider has it
	format   *sphinx.Format
	rng      *rand.Rand                 // routes, delays, retransmission jitter
	timing   *rand.Rand                 // the sending schedule alone: what is sent never moves when
	pending  map[[16]byte]*transmission // by SURB ID
	acks     [][]byte                   // ack packets waiting for a send slot
	loops    map[[16]byte]time.Time     // loop ID → sent
	checks   map[[16]byte]*interest.Check
	expiring map[expiryKey]time.Time // a disappearing message → when it goes
	// retention is the mailbox retention the provider was last asked for.
	retention time.Duration
	stats     Stats
	srtt      time.Duration // smoothed round trip of acks, and its variation
	rttvar    time.Duration
	wiped     bool // the state is gone: nothing more is written
	closed    bool // Close was called: nothing more is read or written

	// self is the user's card, made once (it signs its prekeys).
	self *identity.Card
	// inbox holds the received messages' records, by ID (files' bodies
	// stay on disk).
	inbox map[[16]byte]*inboxEntry
	// dirty: the section of c.mu under way changed what the user sees.
	dirty bool
	// view is what reads load without c.mu (see view.go).
	view atomic.Pointer[view]
}

// contact is a contact in memory.
type contact struct {
	key  string // identity key hex
	rec  contactRecord
	card *identity.Card
	sess *session.Session
	// The hello's schedule while the session is unconfirmed.
	helloDue      time.Time
	helloAttempts int
	// safety is the safety number with the user, once computed.
	safety string
}

// usable reports whether fragments may be sealed in the contact's session.
func (ct *contact) usable() bool {
	return ct.sess != nil && (!ct.rec.Session.Initiated || ct.rec.Session.Confirmed)
}

// outgoing is a message being sent.
type outgoing struct {
	rec      outRecord
	to       *contact
	frags    [][]byte
	sent     []bool
	due      []time.Time // when each unacknowledged fragment may go (again)
	attempts []int
	// text is a text message's text, for the user to see what they sent
	// ("sent/<id hex>", kept until the message disappears or the state
	// is wiped; the body goes once delivered).
	text string
}

// transmission is a packet sent with a SURB, waiting for its ack.
type transmission struct {
	token  []byte
	to     *contact
	msg    *outgoing // nil for a hello
	index  int
	sentAt time.Time
}

// Stats are the client's counters since it started.
type Stats struct {
	Connected  bool
	LastError  string
	Epoch      uint64
	ValidUntil time.Time
	// NextEpoch is the epoch of the next document once held.
	NextEpoch uint64
	// DocumentProblem says, in words, why no packet is sent: the document
	// ended with no successor. Empty when all is well.
	DocumentProblem string

	SendSlots, FragmentsSent, Retransmissions, HellosSent, AcksSent uint64
	DropsSent, LoopsSent, LoopsReturned, LoopsLost                  uint64
	Fetched, AcksReceived, Undecryptable, FromStrangers, Duplicates uint64
	MessagesReceived, Refused                                       uint64
}

// Account is what the provider's operator needs to give the user an
// account: `backchannel provider add-user --link-key … --mailbox …`.
type Account struct {
	LinkKey [32]byte
	Mailbox [32]byte
}

// Create makes a new client state in cfg.Dir: a fresh identity and link
// key, and a mailbox ID at the network's provider. The provider's operator
// must add the returned account before the client can connect.
func Create(cfg Config, network Network) (*Client, Account, error) {
	cfg = withDefaults(cfg)
	if network.Threshold < 1 || len(network.Authorities) < network.Threshold {
		return nil, Account{}, fmt.Errorf("client: %d authorities with a threshold of %d", len(network.Authorities), network.Threshold)
	}
	var mailbox [32]byte
	if _, err := io.ReadFull(cfg.Rand, mailbox[:]); err != nil {
		return nil, Account{}, err
	}
	id, err := identity.Generate(cfg.Rand, network.Provider.Identity, mailbox, cfg.Clock.Now())
	if err != nil {
		return nil, Account{}, err
	}
	link, err := wire.GenerateKeypair(cfg.Rand)
	if err != nil {
		return nil, Account{}, err
	}
	params := cfg.VaultParams
	if params == (vault.Params{}) {
		params = vault.DefaultParams()
	}
	dir, err := vault.CreateDir(cfg.Dir, cfg.Rand, cfg.Passphrase, params)
	if err != nil {
		return nil, Account{}, err
	}
	idBytes, err := id.MarshalBinary()
	if err != nil {
		return nil, Account{}, err
	}
	p := profileRecord{Version: stateVersion, Identity: idBytes, LinkKey: link.Private, Network: network, Created: cfg.Clock.Now().UTC()}
	st := store{dir}
	if err := st.put(profileLabel, p); err != nil {
		return nil, Account{}, err
	}
	c, err := open(cfg, st)
	if err != nil {
		return nil, Account{}, err
	}
	return c, Account{LinkKey: [32]byte(link.Public), Mailbox: mailbox}, nil
}

// Open unlocks the client state in cfg.Dir.
func Open(cfg Config) (*Client, error) {
	cfg = withDefaults(cfg)
	dir, err := vault.OpenDir(cfg.Dir, cfg.Rand, cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	return open(cfg, store{dir})
}

func withDefaults(cfg Config) Config {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxChecksPerDay == 0 {
		cfg.MaxChecksPerDay = DefaultMaxChecksPerDay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		cfg.Dial = dialProvider
	}
	return cfg
}

func dialProvider(ctx context.Context, n Network, key wire.Keypair, frameSize int) (Link, error) {
	return clientlink.Dial(ctx, n.Provider.Address, key, n.Provider.LinkKey, frameSize)
}

func open(cfg Config, st store) (*Client, error) {
	c := &Client{
		cfg: cfg, store: st, log: cfg.Logger,
		contacts: map[string]*contact{}, outByID: map[[16]byte]*outgoing{},
		reasm:   &fragment.Reassembler{},
		pending: map[[16]byte]*transmission{}, loops: map[[16]byte]time.Time{}, checks: map[[16]byte]*interest.Check{}, expiring: map[expiryKey]time.Time{},
		inbox: map[[16]byte]*inboxEntry{},
	}
	seed := cfg.ScheduleSeed
	if seed == ([32]byte{}) {
		if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
			return nil, err
		}
	}
	c.timing = rand.New(rand.NewChaCha8(seed))
	c.rng = rand.New(rand.NewChaCha8(sha256.Sum256(append([]byte("backchannel client routes\x00"), seed[:]...))))
	if err := st.get(profileLabel, &c.profile); err != nil {
		return nil, err
	}
	id, err := identity.ParseIdentity(c.profile.Identity)
	if err != nil {
		return nil, err
	}
	c.id = id
	c.self = id.Card()
	priv, err := ecdh.X25519().NewPrivateKey(c.profile.LinkKey)
	if err != nil {
		return nil, fmt.Errorf("client: link key: %w", err)
	}
	c.linkKey = wire.Keypair{Private: c.profile.LinkKey, Public: priv.PublicKey().Bytes()}
	c.guard = &session.Guard{}
	if b, err := st.dir.Get(guardLabel); err == nil {
		if err := c.guard.UnmarshalBinary(b); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, vault.ErrNotFound) {
		return nil, err
	}
	if err := c.loadContacts(); err != nil {
		return nil, err
	}
	if err := c.loadOutbox(); err != nil {
		return nil, err
	}
	c.received = receivedRecord{Version: stateVersion, IDs: map[string]time.Time{}}
	if err := st.get(receivedLabel, &c.received); err != nil && !errors.Is(err, vault.ErrNotFound) {
		return nil, err
	}
	if err := c.loadFragments(); err != nil {
		return nil, err
	}
	if err := c.loadChecks(); err != nil {
		return nil, err
	}
	if err := c.loadInbox(); err != nil {
		return nil, err
	}
	if err := c.loadExpiries(); err != nil {
		return nil, err
	}
	c.view.Store(&view{self: c.self, account: Account{LinkKey: [32]byte(c.linkKey.Public), Mailbox: c.id.Mailbox}, changed: make(chan struct{})})
	c.dirty = true
	c.publish()
	return c, nil
}

// loadInbox reads the received messages' records into memory.
func (c *Client) loadInbox() error {
	recs, err := inRecords.all(c.store)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		c.indexIn(rec)
	}
	return nil
}

func (c *Client) loadContacts() error {
	keys, err := contactKeys(c.store)
	if err != nil {
		return err
	}
	for _, key := range keys {
		ct := &contact{key: key}
		if err := c.store.get(contactLabel(key), &ct.rec); err != nil {
			return err
		}
		if ct.card, err = identity.ParseCard(ct.rec.Card); err != nil {
			return fmt.Errorf("client: contact %q: %w", ct.rec.Name, err)
		}
		if s := ct.rec.Session; s != nil {
			r, err := session.UnmarshalRatchet(s.Ratchet, c.cfg.Rand)
			if err != nil {
				return fmt.Errorf("client: contact %q: %w", ct.rec.Name, err)
			}
			r.SetClock(c.cfg.Clock)
			ct.sess = &session.Session{Ratchet: r, AD: s.AD, Peer: ct.card}
		}
		c.contacts[ct.key] = ct
	}
	return nil
}

func (c *Client) loadOutbox() error {
	recs, err := outRecords.all(c.store)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		to := c.contacts[rec.To]
		if to == nil {
			return fmt.Errorf("%w: message %x is to an unknown contact", ErrMalformed, rec.ID)
		}
		m := &outgoing{rec: rec, to: to}
		if rec.Kind == Text.String() {
			// States from before sent texts were kept have none.
			if text, err := sentTexts.get(c.store, rec.ID); err == nil {
				m.text = string(text)
			} else if !errors.Is(err, vault.ErrNotFound) {
				return err
			}
		}
		if rec.Status == Queued || rec.Status == Sent {
			body, err := bodies.get(c.store, rec.ID)
			if err != nil {
				return err
			}
			if err := m.cut(body, c.fragmentCapacity()); err != nil {
				return err
			}
			if len(m.frags) != len(rec.Acked) {
				return fmt.Errorf("%w: message %x has %d fragments, its record %d", ErrMalformed, rec.ID, len(m.frags), len(rec.Acked))
			}
		}
		c.out = append(c.out, m)
		c.outByID[rec.ID] = m
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].rec.Created.Before(c.out[j].rec.Created) })
	return nil
}

func (c *Client) loadFragments() error {
	labels, err := c.store.dir.Labels(fragmentPrefix)
	if err != nil {
		return err
	}
	now := c.cfg.Clock.Now()
	for _, label := range labels {
		b, err := c.store.dir.Get(label)
		if err != nil {
			return err
		}
		if _, _, _, err := c.reasm.Add(b, now); err != nil {
			return fmt.Errorf("client: stored fragment %s: %w", label, err)
		}
	}
	return nil
}

// cut splits the encoded content into fragments and readies their
// schedule: every unacknowledged fragment is due now.
func (m *outgoing) cut(body []byte, capacity int) error {
	frags, err := fragment.Split(fragment.ID(m.rec.ID), body, capacity)
	if err != nil {
		return err
	}
	m.frags = frags
	m.sent = make([]bool, len(frags))
	m.due = make([]time.Time, len(frags))
	m.attempts = make([]int, len(frags))
	return nil
}

// fragmentCapacity is the largest fragment a packet carries: a Sphinx
// payload, less the envelope with its SURB, the session message's header
// and overhead, and the record type byte.
func (c *Client) fragmentCapacity() int {
	g := sphinx.DefaultGeometry
	if c.doc != nil {
		g = c.doc.Parameters.Geometry
	}
	return fragmentCapacity(g)
}

func fragmentCapacity(g sphinx.Geometry) int {
	return envelopeSessionRoom(g, 0) - session.EncryptedHeaderSize - session.SealOverhead - 1
}

// Self returns the user's own card.
func (c *Client) Self() *identity.Card { return c.view.Load().self }

// Account returns the user's account at the provider.
func (c *Client) Account() Account { return c.view.Load().account }

// ContactInfo is a contact as the user sees it.
type ContactInfo struct {
	Name         string
	SafetyNumber string
	Verified     bool
	Session      string // "none", "setting up", "established"
	Notice       string
	// Expiry is how long the conversation's messages live (0: for ever).
	Expiry time.Duration
}

// ErrNoContact: no contact has that name.
var ErrNoContact = errors.New("client: no such contact")

// AddContact adds the owner of card as a contact called name.
func (c *Client) AddContact(name string, card *identity.Card) error {
	if err := card.Verify(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	return c.addContact(name, card)
}

// addContact adds a contact; c.mu is held and the card verified.
func (c *Client) addContact(name string, card *identity.Card) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("client: a contact name must be 1 to 64 bytes, not %q", name)
	}
	key := hexKey(card.DHKey)
	if bytes.Equal(card.DHKey[:], c.id.DH.PublicKey().Bytes()) {
		return errors.New("client: that card is your own")
	}
	if c.contacts[key] != nil {
		return fmt.Errorf("client: that card is already your contact %q", c.contacts[key].rec.Name)
	}
	if c.byName(name) != nil {
		return fmt.Errorf("client: you already have a contact called %q", name)
	}
	raw, err := card.MarshalBinary()
	if err != nil {
		return err
	}
	ct := &contact{key: key, card: card, rec: contactRecord{Version: stateVersion, Name: name, Card: raw, Added: c.cfg.Clock.Now().UTC()}}
	if err := c.saveContact(ct); err != nil {
		return err
	}
	c.contacts[key] = ct
	c.notify()
	return nil
}

func (c *Client) byName(name string) *contact {
	for _, ct := range c.contacts {
		if ct.rec.Name == name {
			return ct
		}
	}
	return nil
}

// Contacts lists the contacts by name.
func (c *Client) Contacts() []ContactInfo { return c.view.Load().contacts }

// Verify marks a contact's safety number as compared out of band.
func (c *Client) Verify(name string) error {
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(name)
	if ct == nil {
		return fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	ct.rec.Verified = true
	c.notify()
	return c.saveContact(ct)
}

// MessageInfo is a message as the user sees it.
type MessageInfo struct {
	ID       string
	Contact  string
	Incoming bool
	Kind     string
	Name     string
	Size     int
	Text     string // for a text
	Status   Status // outgoing only
	Reason   string // why it failed
	Time     time.Time
	// Acked and Fragments show an outgoing message's progress.
	Acked, Fragments int
	// Conveyed is set for a message an intermediary (Contact) passed on:
	// Label is how it names the sender, Note its note.
	Conveyed    bool
	Label, Note string
}

// Send queues content for the contact called to and returns its ID.
func (c *Client) Send(to string, content Content) (string, error) {
	if content.Kind != Text && content.Kind != File {
		return "", fmt.Errorf("client: only texts and files are sent this way, not %v", content.Kind)
	}
	c.mu.Lock()
	defer c.unlock()
	ct := c.byName(to)
	if ct == nil {
		return "", fmt.Errorf("%w: %q", ErrNoContact, to)
	}
	m, err := c.queue(ct, content)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(m.rec.ID[:]), nil
}

// queue queues content for the contact, with the conversation's time to
// live; c.mu is held.
func (c *Client) queue(ct *contact, content Content) (*outgoing, error) {
	content.TTL = ct.rec.Expiry
	body, err := content.marshal()
	if err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, id[:]); err != nil {
		return nil, err
	}
	now := c.cfg.Clock.Now().UTC()
	m := &outgoing{to: ct, rec: outRecord{
		Version: stateVersion, ID: id, To: ct.key, Kind: content.Kind.String(), Name: content.Name,
		Size: len(content.Body), Created: now, Status: Queued,
	}}
	m.rec.TTL = content.TTL
	if err := m.cut(body, c.fragmentCapacity()); err != nil {
		return nil, err
	}
	m.rec.Acked = make([]bool, len(m.frags))
	if err := bodies.put(c.store, id, body); err != nil {
		return nil, err
	}
	if content.Kind == Text {
		if err := sentTexts.put(c.store, id, content.Body); err != nil {
			return nil, err
		}
		m.text = string(content.Body)
	}
	if err := outRecords.put(c.store, id, m.rec); err != nil {
		return nil, err
	}
	c.out = append(c.out, m)
	c.outByID[id] = m
	c.notify()
	return m, nil
}

// queueControl queues a message the client handles itself (an
// introduction, a conveyed message, a check step); c.mu is held.
func (c *Client) queueControl(ct *contact, kind ContentKind, body []byte) (*outgoing, error) {
	return c.queue(ct, Content{Kind: kind, Body: body})
}

// Outbox lists the sent messages, oldest first.
func (c *Client) Outbox() []MessageInfo { return c.view.Load().outbox }

// Inbox lists the received messages, oldest first.
func (c *Client) Inbox() ([]MessageInfo, error) { return c.view.Load().inbox, nil }

// InboxSize returns how many messages the inbox holds.
func (c *Client) InboxSize() (int, error) { return len(c.view.Load().inbox), nil }

// Received returns a received message's content.
func (c *Client) Received(id string) (Content, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return Content{}, fmt.Errorf("client: %q is not a message ID", id)
	}
	// Read from the vault without c.mu: it is safe for concurrent use.
	var rec inRecord
	if err := inRecords.get(c.store, [16]byte(raw), &rec); err != nil {
		return Content{}, err
	}
	kind := Text
	if rec.Kind == File.String() {
		kind = File
	}
	return Content{Kind: kind, Name: rec.Name, Body: rec.Body}, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.view.Load().stats }

// Changed returns a channel that is closed at the next change the user
// would see (a message's status, a new message, a contact).
func (c *Client) Changed() <-chan struct{} { return c.view.Load().changed }

func (c *Client) saveContact(ct *contact) error {
	if ct.sess != nil {
		if ct.rec.Session == nil {
			return errors.New("client: a session without its record")
		}
		r, err := ct.sess.Ratchet.MarshalBinary()
		if err != nil {
			return err
		}
		ct.rec.Session.Ratchet = r
		ct.rec.Session.AD = ct.sess.AD
		if ct.sess.Peer != ct.card {
			// A card update arrived in the session.
			raw, err := ct.sess.Peer.MarshalBinary()
			if err != nil {
				return err
			}
			ct.card, ct.rec.Card = ct.sess.Peer, raw
		}
	} else {
		ct.rec.Session = nil
	}
	return c.store.put(contactLabel(ct.key), ct.rec)
}

func (c *Client) saveGuard() error {
	b, err := c.guard.MarshalBinary()
	if err != nil {
		return err
	}
	return c.store.dir.Put(guardLabel, b)
}

// Close forgets the state key; Run, if still running, stops at its next
// step.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.unlock()
	c.closed = true
	c.store.dir.Close()
}

// stopped returns why the client may not go on, if it may not; c.mu is
// held.
func (c *Client) stopped() error {
	switch {
	case c.wiped:
		return ErrWiped
	case c.closed:
		return ErrClosed
	}
	return nil
}

// hexKey names a contact by its identity key.
func hexKey(k [32]byte) string { return hex.EncodeToString(k[:]) }

// Wipe makes the state unreadable at once, even to someone who knows the
// passphrase: it overwrites the vault header (the wrapped key every entry
// is sealed under) and forgets the key, then overwrites and removes every
// entry. The client must not be used afterwards.
func (c *Client) Wipe() error {
	c.mu.Lock()
	defer c.unlock()
	c.wiped = true
	return c.store.dir.Wipe()
}
