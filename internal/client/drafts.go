package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/backchannel/backchannel/internal/client/audit"
	"github.com/backchannel/backchannel/internal/client/vault"
)

// Drafts: under dual control (dualcontrol.go) what an officer asks to
// send is kept as a draft, and leaves only when a different officer with
// the role the draft needs approves it. The client keeps the draft as the
// caller gave it (the control layer's encoded request, opaque here) and
// never queues anything of it: approving returns it for the caller to
// carry out. An approval binds the draft's exact content by a keyed hash
// (DraftMAC): an approver approves the content they were shown, and an
// edit in between voids it. The trail records the hash, never the
// content; the key is in the vault, so a seized copy of the trail alone
// cannot confirm a guessed text.

// DraftState is where a draft is.
type DraftState string

// The states of a draft.
const (
	DraftPending  DraftState = "pending"
	DraftApproved DraftState = "approved"
	DraftRejected DraftState = "rejected"
)

// DraftFields are what a draft records, and shows.
type DraftFields struct {
	// Op names the operation; About says what it is, for lists; Contacts
	// are the contacts it concerns.
	Op       string   `json:"op"`
	About    string   `json:"about"`
	Contacts []string `json:"contacts,omitempty"`
	// Payload is the request as the caller encoded it; gone once the
	// draft is rejected, or done.
	Payload   []byte     `json:"payload,omitempty"`
	Needs     Role       `json:"needs"`
	DraftedBy string     `json:"drafted_by"`
	Drafted   time.Time  `json:"drafted"`
	Edited    time.Time  `json:"edited,omitzero"`
	State     DraftState `json:"state"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Decided   time.Time  `json:"decided,omitzero"`
	Note      string     `json:"note,omitempty"`
	// Result is what carrying it out returned (a message ID), once
	// approved and done.
	Result string `json:"result,omitempty"`
}

// draftRecord is a draft (draftRecords).
type draftRecord struct {
	Version int `json:"version"`
	ID      [16]byte
	DraftFields
}

var draftRecords = table[draftRecord]{"draft/"}

// draftKeyLabel holds the key of draft content hashes.
const draftKeyLabel = "draft-key"

// Draft is a draft as shown: its ID in hex, and the keyed hash of its
// content (what an approval binds) while it has one.
type Draft struct {
	ID  string `json:"id"`
	MAC string `json:"mac"`
	DraftFields
}

// Errors of drafts.
var (
	ErrNoDraft       = errors.New("client: no such draft")
	ErrOwnDraft      = errors.New("client: a draft is approved by an officer other than the one who drafted it")
	ErrDraftChanged  = errors.New("client: the draft changed since it was shown to you: look at it again")
	ErrDraftNotReady = errors.New("client: the draft is not waiting for approval")
)

// draftKey returns the key of content hashes, made at first use; c.dmu is
// held.
func (c *Client) draftKey() ([]byte, error) {
	key, err := c.store.dir.Get(draftKeyLabel)
	if !errors.Is(err, vault.ErrNotFound) {
		return key, err
	}
	key = make([]byte, 32)
	if _, err := io.ReadFull(c.cfg.Rand, key); err != nil {
		return nil, err
	}
	return key, c.store.dir.Put(draftKeyLabel, key)
}

// draftMAC is the keyed hash of a draft's content: its operation and
// payload, 16 bytes in hex.
func draftMAC(key []byte, op string, payload []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("backchannel draft v1\x00" + op + "\x00"))
	m.Write(payload)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// NewDraft keeps an operation as a draft of officer by, who needs the
// drafter role (the administrator role for what needs two
// administrators), and returns its ID.
func (c *Client) NewDraft(by, op, about string, contacts []string, payload []byte, needs Role) (string, error) {
	author := RoleDrafter
	if needs == RoleAdministrator {
		author = RoleAdministrator
	}
	if err := c.May(by, author); err != nil {
		return "", err
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	key, err := c.draftKey()
	if err != nil {
		return "", err
	}
	rec := draftRecord{Version: StateVersion, DraftFields: DraftFields{Op: op, About: about, Contacts: contacts, Payload: payload, Needs: needs,
		DraftedBy: by, Drafted: c.cfg.Clock.Now().UTC(), State: DraftPending}}
	if _, err := io.ReadFull(c.cfg.Rand, rec.ID[:]); err != nil {
		return "", err
	}
	if err := draftRecords.put(c.store, rec.ID, rec); err != nil {
		return "", err
	}
	id := hex.EncodeToString(rec.ID[:])
	c.notifyChange()
	return id, c.Record(by, "draft", fmt.Sprintf("draft %s: %s, content %s", id, op, draftMAC(key, op, payload)))
}

// Drafts lists the drafts, pending first, then newest first.
func (c *Client) Drafts() ([]Draft, error) {
	recs, err := draftRecords.all(c.store)
	if err != nil {
		return nil, err
	}
	c.dmu.Lock()
	key, err := c.draftKey()
	c.dmu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]Draft, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.shown(key))
	}
	slices.SortStableFunc(out, func(a, b Draft) int {
		if (a.State == DraftPending) != (b.State == DraftPending) {
			if a.State == DraftPending {
				return -1
			}
			return 1
		}
		return b.Drafted.Compare(a.Drafted)
	})
	return out, nil
}

func (r *draftRecord) shown(key []byte) Draft {
	d := Draft{ID: hex.EncodeToString(r.ID[:]), DraftFields: r.DraftFields}
	if r.Payload != nil {
		d.MAC = draftMAC(key, r.Op, r.Payload)
	}
	return d
}

// draft reads a draft by its hex ID; c.dmu is held.
func (c *Client) draft(id string) (draftRecord, error) {
	var rec draftRecord
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return rec, fmt.Errorf("%w: %q", ErrNoDraft, id)
	}
	if err := draftRecords.get(c.store, [16]byte(b), &rec); errors.Is(err, vault.ErrNotFound) {
		return rec, fmt.Errorf("%w: %s", ErrNoDraft, id)
	} else if err != nil {
		return rec, err
	}
	return rec, nil
}

// EditDraft replaces a pending draft's content; only its drafter may. An
// approval given for the old content no longer matches.
func (c *Client) EditDraft(by, id, about string, payload []byte) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	rec, err := c.draft(id)
	if err != nil {
		return err
	}
	if rec.DraftedBy != by {
		return fmt.Errorf("%w: only %s, who drafted it, edits it", ErrNotAllowed, rec.DraftedBy)
	}
	if rec.State != DraftPending {
		return fmt.Errorf("%w (it is %s)", ErrDraftNotReady, rec.State)
	}
	key, err := c.draftKey()
	if err != nil {
		return err
	}
	rec.About, rec.Payload, rec.Edited = about, payload, c.cfg.Clock.Now().UTC()
	if err := draftRecords.put(c.store, rec.ID, rec); err != nil {
		return err
	}
	c.notifyChange()
	return c.Record(by, "draft-edit", fmt.Sprintf("draft %s: content %s", id, draftMAC(key, rec.Op, payload)))
}

// ApproveDraft approves a pending draft whose content hashes to mac (what
// the approver was shown), as officer by: not its drafter, holding the
// role it needs. It returns the draft, marked approved, for the caller to
// carry out (and then DraftDone). Marked first: a crash before it is
// carried out leaves it approved and not done — shown so — never carried
// out twice.
func (c *Client) ApproveDraft(by, id, mac string) (Draft, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	rec, err := c.draft(id)
	if err != nil {
		return Draft{}, err
	}
	if rec.State != DraftPending {
		return Draft{}, fmt.Errorf("%w (it is %s)", ErrDraftNotReady, rec.State)
	}
	if rec.DraftedBy == by {
		return Draft{}, ErrOwnDraft
	}
	if err := c.May(by, rec.Needs); err != nil {
		return Draft{}, err
	}
	key, err := c.draftKey()
	if err != nil {
		return Draft{}, err
	}
	content := draftMAC(key, rec.Op, rec.Payload)
	if !hmac.Equal([]byte(mac), []byte(content)) {
		return Draft{}, ErrDraftChanged
	}
	rec.State, rec.DecidedBy, rec.Decided = DraftApproved, by, c.cfg.Clock.Now().UTC()
	if err := draftRecords.put(c.store, rec.ID, rec); err != nil {
		return Draft{}, err
	}
	c.notifyChange()
	if err := c.Record(by, "approve", fmt.Sprintf("draft %s of %s: %s, content %s", id, rec.DraftedBy, rec.Op, content)); err != nil {
		return Draft{}, err
	}
	return rec.shown(key), nil
}

// DraftDone notes what carrying out an approved draft gave (a message ID),
// or, if it failed, puts it back to pending with the error as its note.
func (c *Client) DraftDone(id, result string, failed error) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	rec, err := c.draft(id)
	if err != nil {
		return err
	}
	if failed != nil {
		rec.State, rec.DecidedBy, rec.Decided, rec.Note = DraftPending, "", time.Time{}, "approved, but it failed: "+failed.Error()
	} else {
		rec.Result, rec.Payload = result, nil
	}
	if err := draftRecords.put(c.store, rec.ID, rec); err != nil {
		return err
	}
	c.notifyChange()
	return nil
}

// RejectDraft rejects a pending draft: it never leaves, and its content
// is deleted. Its drafter may withdraw it; anyone else needs the role it
// needs.
func (c *Client) RejectDraft(by, id, note string) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	rec, err := c.draft(id)
	if err != nil {
		return err
	}
	if rec.State != DraftPending {
		return fmt.Errorf("%w (it is %s)", ErrDraftNotReady, rec.State)
	}
	if rec.DraftedBy != by {
		if err := c.May(by, rec.Needs); err != nil {
			return err
		}
	}
	rec.State, rec.DecidedBy, rec.Decided, rec.Note, rec.Payload = DraftRejected, by, c.cfg.Clock.Now().UTC(), note, nil
	if err := draftRecords.put(c.store, rec.ID, rec); err != nil {
		return err
	}
	c.notifyChange()
	return c.Record(by, audit.Action("reject"), fmt.Sprintf("draft %s of %s: %s", id, rec.DraftedBy, rec.Op))
}

// notifyChange tells the views that something the user sees changed; it
// takes c.mu.
func (c *Client) notifyChange() {
	c.mu.Lock()
	c.notify()
	c.unlock()
}
