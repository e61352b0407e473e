package client

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// StateVersion is the version of every record the client keeps in its
// vault; a record of another version is refused with a clear error, so an
// older program never misreads a newer state.
const StateVersion = 1

// Network is how the client reaches and trusts the network: the directory
// authorities that sign the network document, and the user's provider.
type Network struct {
	Authorities []ed25519.PublicKey `json:"authorities"`
	Threshold   int                 `json:"threshold"`
	// ClockSkew is how far the local clock may be off the authorities'.
	ClockSkew time.Duration `json:"clock_skew"`
	Provider  Provider      `json:"provider"`
	// Geometry is the network's packet geometry as the bootstrap file
	// gave it, for the links made before a document is held; zero for a
	// bootstrap file of the previous release (legacyGeometry).
	Geometry sphinx.Geometry `json:"geometry,omitzero"`
}

// Provider is the user's provider as the bootstrap file names it.
type Provider struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// LinkKey is its Noise link key, Identity its identity key (Sphinx
	// node ID).
	LinkKey  [32]byte `json:"link_key"`
	Identity [32]byte `json:"identity"`
	// PostQuantum is set once the provider has made a post-quantum link
	// (wire link version 2) with this client; from then on the client
	// never takes a classical one from it (see dialProvider).
	PostQuantum bool `json:"post_quantum,omitempty"`
}

// profileRecord is the user's own keys and settings (profileLabel).
type profileRecord struct {
	Version  int       `json:"version"`
	Identity []byte    `json:"identity"`
	LinkKey  []byte    `json:"link_key"` // private; the public half is derived
	Network  Network   `json:"network"`
	Created  time.Time `json:"created"`
	// LoopKey keys the loops the client sends itself in the keyed
	// envelope; made at the first start of this release.
	LoopKey []byte `json:"loop_key,omitempty"`
}

// contactRecord is one contact ("contact/<identity key hex>").
type contactRecord struct {
	Version  int            `json:"version"`
	Name     string         `json:"name"`
	Card     []byte         `json:"card"`
	Verified bool           `json:"verified"`
	Added    time.Time      `json:"added"`
	Session  *sessionRecord `json:"session,omitempty"`
	// Notice is something the user must be told about the contact (that
	// the session was set up again, say), until they have seen it.
	Notice string `json:"notice,omitempty"`
	// Expiry, if not zero, is how long messages of the conversation live
	// at each end (disappearing messages); ExpirySetAt is when either side
	// set it, so that the later setting wins on both.
	Expiry      time.Duration `json:"expiry,omitempty"`
	ExpirySetAt time.Time     `json:"expiry_set_at,omitzero"`
	// Restored: the state was restored from a backup, which does not keep
	// sessions; the next session says so in its hello, so that the
	// contact replaces the one it holds.
	Restored bool `json:"restored,omitempty"`
	// Reads is the latest content version the contact's software said it
	// reads (0: it has not said; it reads version 2), and Announced the
	// one this side told it (see announce).
	Reads     int `json:"reads,omitempty"`
	Announced int `json:"announced,omitempty"`
	// TimeBudget, if set, is how long messages to the contact may take to
	// be acknowledged before they fail, instead of the client's.
	TimeBudget time.Duration `json:"time_budget,omitempty"`
	// Rekey: the session was set up before this release (it has no
	// envelope keys, so its packets go in the classical envelope) and the
	// contact's software opens envelope version 2, so a new session is
	// being set up (contact.rekey).
	Rekey bool `json:"rekey,omitempty"`
}

// sessionRecord is a session's state.
type sessionRecord struct {
	Ratchet []byte `json:"ratchet"`
	AD      []byte `json:"ad"`
	// Initiated: this side started the session. Confirmed: the peer has
	// shown it holds the session (acknowledged the hello, or sent in it).
	Initiated bool `json:"initiated"`
	Confirmed bool `json:"confirmed"`
	// Initial is this side's encoded Initial, resent with every hello
	// until the session is confirmed.
	Initial []byte `json:"initial,omitempty"`
	// Reason is the hello's reason (helloNew, helloRestored or helloRekey).
	Reason uint8 `json:"reason,omitempty"`
	// PeerEphemeral is the ephemeral key of the peer's Initial that set up
	// a session this side accepted.
	PeerEphemeral []byte    `json:"peer_ephemeral,omitempty"`
	Established   time.Time `json:"established"`
	// EnvelopeSend and EnvelopeReceive are the session's envelope keys
	// (session.EnvelopeKeys); absent for a session set up before this
	// release.
	EnvelopeSend    []byte `json:"envelope_send,omitempty"`
	EnvelopeReceive []byte `json:"envelope_receive,omitempty"`
	// PeerKeyed: the peer holds the envelope keys too — its software was
	// known to open envelope version 2 when this side started the session,
	// its hello came in version 2, or a payload of it came under the key.
	// Until then, what goes to it is classical (a session set up with the
	// previous release has keys on one side only).
	PeerKeyed bool `json:"peer_keyed,omitempty"`
	// ID identifies the session to both sides: SHA-256 of the Initial
	// that set it up (the mutual interest check binds it).
	ID []byte `json:"id"`
}

// Status is where a sent message is.
type Status string

const (
	// Queued: waiting for send slots (or for the session to be set up).
	Queued Status = "queued"
	// Sent: every fragment has left at least once.
	Sent Status = "sent"
	// Delivered: the recipient acknowledged every fragment.
	Delivered Status = "delivered"
	// Failed: a fragment went unacknowledged through every attempt.
	Failed Status = "failed"
)

// outRecord is a sent message's state ("out/<id hex>"); its content is in
// "body/<id hex>", written once.
type outRecord struct {
	Version   int       `json:"version"`
	ID        [16]byte  `json:"id"`
	To        string    `json:"to"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name,omitempty"`
	Size      int       `json:"size"`
	Created   time.Time `json:"created"`
	Acked     []bool    `json:"acked"`
	Status    Status    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Delivered time.Time `json:"delivered,omitzero"`
	// Ref is the reference a feature queued the message with (a desk
	// entry, for a conveyed message): the feature hears of its delivery.
	// ("desk" on disk, its first use.)
	Ref [16]byte `json:"desk,omitzero"`
	// TTL is the message's time to live (disappearing messages); Expires,
	// set once it is delivered or failed, is when it disappears from this
	// client.
	TTL     time.Duration `json:"ttl,omitempty"`
	Expires time.Time     `json:"expires,omitzero"`
	// About is what a feature's message is, for the user (MessageInfo);
	// absent from records of the first releases.
	About string `json:"about,omitempty"`
	// Urgent: its fragments go ahead of other messages' (Queuing.Urgent).
	Urgent bool `json:"urgent,omitempty"`
	// Deadline is when it fails if not acknowledged by then (retry.go);
	// records of earlier releases have none.
	Deadline time.Time `json:"deadline,omitzero"`
	// DraftedBy and ApprovedBy name the officers who drafted and approved
	// it (Queuing); records of earlier releases have neither.
	DraftedBy  string `json:"drafted_by,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"`
}

// inRecord is a received message ("in/<id hex>").
type inRecord struct {
	Version  int       `json:"version"`
	ID       [16]byte  `json:"id"`
	From     string    `json:"from"`
	Kind     string    `json:"kind"`
	Name     string    `json:"name,omitempty"`
	Body     []byte    `json:"body"`
	Received time.Time `json:"received"`
	// Sent is when the sender queued it, by its clock (zero from software
	// before content version 3).
	Sent time.Time `json:"sent,omitzero"`
	// Conveyed messages: From is the intermediary, Label how the
	// intermediary names the sender, Note its note, Convey the ID to
	// answer to.
	Conveyed bool     `json:"conveyed,omitempty"`
	Label    string   `json:"label,omitempty"`
	Note     string   `json:"note,omitempty"`
	Convey   [16]byte `json:"convey,omitzero"`
	// Expires, if set, is when the message disappears from this client.
	Expires time.Time `json:"expires,omitzero"`
}

// receivedRecord remembers which messages were delivered to the user
// ("received"), so that a retransmitted fragment of one is acknowledged but
// not delivered again, even after the message itself was deleted.
type receivedRecord struct {
	Version int                  `json:"version"`
	IDs     map[string]time.Time `json:"ids"` // sender key hex + "/" + message id hex
}

// receivedMemory is how long a delivered message's ID is remembered.
const receivedMemory = 30 * 24 * time.Hour

// store reads and writes records in the vault directory.
type store struct{ dir *vault.Dir }

func (s store) put(label string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encoding %s: %w", label, err)
	}
	return s.dir.Put(label, b)
}

// get reads a record and checks its version.
func (s store) get(label string, v any) error {
	b, err := s.dir.Get(label)
	if err != nil {
		return err
	}
	return decodeRecord(label, b, v)
}

func decodeRecord(label string, b []byte, v any) error {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("%w: state record %s: %v", ErrMalformed, label, err)
	}
	if head.Version != StateVersion {
		return fmt.Errorf("%w: state record %s has version %d, this program reads version %d", ErrMalformed, label, head.Version, StateVersion)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: state record %s: %v", ErrMalformed, label, err)
	}
	return nil
}

func (s store) exists(label string) bool {
	_, err := s.dir.Get(label)
	return !errors.Is(err, vault.ErrNotFound)
}
