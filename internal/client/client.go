package client

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/client/audit"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/endtoend/session"
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
	// Officer names the first officer of a new state (Create); empty
	// takes DefaultOfficer. Opening, the passphrase says who it is.
	Officer string
	// VaultParams are the passphrase hashing parameters of a new vault;
	// zero takes vault.DefaultParams.
	VaultParams vault.Params
	// Clock defaults to the real clock.
	Clock clock.Clock
	// Rand is the source of secret randomness: keys, SURBs, packets. It
	// is read from several goroutines at once (a packet is built while a
	// received one is opened): it must be safe for that, as
	// crypto/rand.Reader is.
	Rand io.Reader
	// ScheduleSeed seeds the schedule's randomness (Poisson gaps, routes,
	// per-hop delays, retransmission jitter); zero draws it from Rand.
	// Tests fix it.
	ScheduleSeed [32]byte
	// TimeBudget is how long a message may take to be acknowledged before
	// it is marked failed (a contact's own setting, or a message's, takes
	// precedence); zero takes DefaultTimeBudget. Until then it is sent
	// again whatever happens to the network: a message fails for its
	// deadline, never because a relay died (retry.go).
	TimeBudget time.Duration
	// Dial opens the link to the provider; nil dials it over TCP.
	Dial   func(ctx context.Context, n Network, key wire.Keypair, frameSize int) (Link, error)
	Logger *slog.Logger
}

// DefaultTimeBudget is how long a message may take by default: days, so
// that a contact offline over a weekend still gets it.
const DefaultTimeBudget = 72 * time.Hour

// Client is a user's client. Its methods may be called from any goroutine.
//
// c.mu guards the fields below it. Every unexported method of Client runs
// with c.mu held, except the few that take it themselves and say so (the
// loops of run.go, receive, useDocument, followDocuments, holdNext), the
// builds that plan returns (they take a contact's lock, see transmit.go)
// and the loaders open calls before the client is shared. The outbox, the
// inbox and each contact's session have locks of their own; the lock
// order is c.mu, a contact's, then the outbox's or the inbox's. The
// officers and drafts have theirs, taken before c.mu: c.dmu, then c.omu,
// then c.mu. Reads for the user take none: they load the view (view.go).
type Client struct {
	cfg   Config
	store store
	log   *slog.Logger

	// The outbox and the inbox own the messages, each under a lock of its
	// own that is a leaf (see outbox and inbox); each contact's session
	// has the contact's lock.
	outbox *outbox
	inbox  *inbox

	mu      sync.Mutex
	profile profileRecord
	id      *identity.Identity
	linkKey wire.Keypair
	guard   *session.Guard
	// loopKey keys the loops the user sends itself in the keyed form;
	// prekeyOpeners open payloads sealed to the user's prekeys.
	loopKey       [32]byte
	prekeyOpeners []hpke.PrivateKey
	// hooks are a test build's switches (testhooks_on.go); none in a
	// release build.
	hooks testHooks
	trail *audit.Trail
	// officer names the officer whose passphrase opened the state; set
	// at open.
	officer string
	// omu guards officers, and is held through a change of officers
	// (which may seal every entry again) instead of c.mu.
	omu      sync.Mutex
	officers officersRecord
	// dmu serialises the changes of drafts (drafts.go); reading them
	// takes no lock.
	dmu      sync.Mutex
	contacts map[string]*contact // by identity key hex
	doc      *directory.Document
	next     *directory.Document // the next epoch's, once the provider has it
	format   *sphinx.Format
	// linkFrame is the frame size of the link to the provider in use.
	linkFrame int
	rng       *rand.Rand              // routes, delays, retransmission jitter
	timing    *rand.Rand              // the sending schedule alone: what is sent never moves when
	acks      []pendingAck            // acks waiting for a send slot (acks.go)
	loops     map[[16]byte]time.Time  // loop ID → sent
	expiring  map[expiryKey]time.Time // a disappearing message → when it goes
	// retention is the mailbox retention the provider was last asked for.
	retention time.Duration
	stats     Stats
	srtt      time.Duration // smoothed round trip of acks, and its variation
	rttvar    time.Duration
	wiped     bool // the state is gone: nothing more is written
	closed    bool // Close was called: nothing more is read or written
	// inflight counts work begun under c.mu that goes on without it
	// (begin).
	inflight sync.WaitGroup

	// self is the user's card, made once (it signs its prekeys).
	self *identity.Card
	// dirty: the section of c.mu under way changed what the user sees.
	dirty bool
	// features handle the messages of their content kinds.
	features map[ContentKind]Feature
	// view is what reads load without c.mu (see view.go).
	view atomic.Pointer[view]
}

// Stats are the client's counters since it started.
type Stats struct {
	Connected bool
	// LinkVersion is the version of the link to the provider while
	// connected: 2 post-quantum, 1 classical (a provider of the previous
	// release).
	LinkVersion int
	LastError   string
	Epoch       uint64
	ValidUntil  time.Time
	// NextEpoch is the epoch of the next document once held.
	NextEpoch uint64
	// DocumentProblem says, in words, why no packet is sent: the document
	// ended with no successor. Empty when all is well.
	DocumentProblem string

	SendSlots, FragmentsSent, Retransmissions, HellosSent, AcksSent uint64
	DropsSent, LoopsSent, LoopsReturned, LoopsLost                  uint64
	Fetched, AcksReceived, Undecryptable, FromStrangers, Duplicates uint64
	MessagesReceived, Refused                                       uint64
	// SURBAcks counts the acks of AcksReceived that came as SURB replies
	// (from contacts of the previous release, acks.go); the others came as
	// forward packets.
	SURBAcks uint64
	// AckPacketsSent and AckPacketsReceived count the packets of ack
	// channels (ackchannel.go), empty ones too.
	AckPacketsSent, AckPacketsReceived uint64
	// AcksNotSent counts the acks of received messages that could not be
	// queued or made (too many waiting, no key or route to the sender):
	// their senders send the messages again, and a count that keeps
	// growing means a contact's messages are never settled at their end.
	AcksNotSent uint64
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
	if cfg.Officer != "" {
		if err := checkOfficerName(cfg.Officer); err != nil {
			return nil, Account{}, err
		}
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
	p := profileRecord{Version: StateVersion, Identity: idBytes, LinkKey: link.Private, Network: network, Created: cfg.Clock.Now().UTC()}
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

// ErrNoState: the directory holds no client state (make one with Create).
var ErrNoState = vault.ErrNoVault

// HasState reports whether the directory holds a client state.
func HasState(dir string) bool { return vault.Exists(dir) }

// ErrInUse: another process (a daemon) has the state open; one state is
// opened by one process at a time.
var ErrInUse = vault.ErrInUse

// CheckFree reports ErrInUse if another process has the state in dir
// open: for saying so before asking a passphrase for nothing.
func CheckFree(dir string) error { return vault.CheckFree(dir) }

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
	if cfg.TimeBudget == 0 {
		cfg.TimeBudget = DefaultTimeBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		cfg.Dial = dialProvider
	}
	return cfg
}

// dialProvider opens a post-quantum link to the provider, or a classical
// one to a provider of the previous release until the provider has once
// spoken post-quantum (Provider.PostQuantum): from then on, an answer in
// the classical link version is taken for an attempt to downgrade the link.
func dialProvider(ctx context.Context, n Network, key wire.Keypair, frameSize int) (Link, error) {
	return clientlink.Dial(ctx, n.Provider.Address, key, n.Provider.LinkKey, frameSize, !n.Provider.PostQuantum)
}

func open(cfg Config, st store) (*Client, error) {
	c := &Client{
		cfg: cfg, store: st, log: cfg.Logger,
		outbox: newOutbox(st, cfg.Logger), inbox: newInbox(st),
		contacts: map[string]*contact{}, loops: map[[16]byte]time.Time{}, expiring: map[expiryKey]time.Time{},
		features: map[ContentKind]Feature{},
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
	if err := c.openEnvelopes(); err != nil {
		return nil, err
	}
	if c.hooks, err = hooksFromEnvironment(c); err != nil {
		return nil, err
	}
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
	if err := c.loadOfficers(cfg.Officer); err != nil {
		return nil, err
	}
	if c.trail, err = audit.Open(st.dir, func() time.Time { return c.cfg.Clock.Now() }); err != nil {
		return nil, err
	}
	if err := c.Record(c.officer, audit.Unlock, ""); err != nil {
		return nil, err
	}
	now := c.cfg.Clock.Now()
	sent, err := c.outbox.load(c.contacts, c.fragmentCapacity(), now)
	if err != nil {
		return nil, err
	}
	received, err := c.inbox.load(now)
	if err != nil {
		return nil, err
	}
	for id, at := range sent {
		c.expiring[expiryKey{out: true, id: id}] = at
	}
	for id, at := range received {
		c.expiring[expiryKey{id: id}] = at
	}
	c.view.Store(&view{self: c.self, account: Account{LinkKey: [32]byte(c.linkKey.Public), Mailbox: c.id.Mailbox}, changed: make(chan struct{})})
	c.dirty = true
	c.publish()
	return c, nil
}

// Self returns the user's own card.
func (c *Client) Self() *identity.Card { return c.view.Load().self }

// ClassicalCard returns the user's card in version 1, for a contact on the
// previous release, which reads no other. A contact holding it writes to
// the user in the classical envelope until its software says it opens the
// others (envelopes.go).
func (c *Client) ClassicalCard() *identity.Card {
	return c.id.CardOfVersion(identity.CardVersionClassical)
}

// Account returns the user's account at the provider.
func (c *Client) Account() Account { return c.view.Load().account }

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.view.Load().stats }

// Changed returns a channel that is closed at the next change the user
// would see (a message's status, a new message, a contact).
func (c *Client) Changed() <-chan struct{} { return c.view.Load().changed }

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
	c.closed = true
	c.unlock()
	c.inflight.Wait()
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

// begin starts work that goes on after c.mu is released (a packet's
// build, a message's storing), unless the client stopped; the work ends
// with c.inflight.Done. Close and Wipe wait for it before they close the
// vault. c.mu is held.
func (c *Client) begin() error {
	if err := c.stopped(); err != nil {
		return err
	}
	c.inflight.Add(1)
	return nil
}

// Wipe makes the state unreadable at once, even to someone who knows the
// passphrase: it overwrites the vault header (the wrapped key every entry
// is sealed under) and forgets the key, then overwrites and removes every
// entry. The client must not be used afterwards.
func (c *Client) Wipe() error {
	c.mu.Lock()
	c.wiped = true
	c.unlock()
	c.inflight.Wait()
	return c.store.dir.Wipe()
}
