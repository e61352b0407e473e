// Package control is the local socket between a running client daemon and
// the command line: one JSON request per connection, one JSON response, on
// a Unix socket that only the user can open (mode 0600, in the 0700 state
// directory).
//
// Requests are decoded strictly ([ParseRequest]: known fields only, a
// version, a known operation, sizes bounded), since anything that can open
// the socket can ask.
//
// It does not keep the client's state or schedule (package client) or
// parse the command line (cmd/backchannel).
package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// Version is the protocol version of requests and responses.
const Version = 1

// MaxRequestSize bounds a request: a file of client.MaxFileSize bytes in
// base64, with room to spare.
const MaxRequestSize = 4*client.MaxFileSize/3 + 1<<16

// Operations.
const (
	OpCard          = "card"
	OpContactAdd    = "contact-add"
	OpContactList   = "contact-list"
	OpContactVerify = "contact-verify"
	OpSend          = "send"
	OpInbox         = "inbox"
	OpRead          = "read"
	OpStatus        = "status"
	OpBackup        = "backup"
	OpWait          = "wait"

	OpIntroduce     = "introduce"
	OpIntroList     = "intro-list"
	OpIntroAnswer   = "intro-answer"
	OpConvey        = "convey"
	OpConveyReply   = "convey-reply"
	OpConveyList    = "convey-list"
	OpReceipt       = "receipt"
	OpDeskList      = "desk-list"
	OpDeskPass      = "desk-pass"
	OpDeskRefuse    = "desk-refuse"
	OpCheckAsk      = "check-ask"
	OpCheckAnswer   = "check-answer"
	OpCheckList     = "check-list"
	OpWipe          = "wipe"
	OpContactExpire = "contact-expire"
)

// What a wait request can wait for, with Count.
var waitConditions = map[string]bool{
	"settled": true, "received": true, "introductions": true, "introductions-done": true,
	"desk": true, "conveyed": true, "checks": true, "checks-done": true,
	"inbox-at-most": true, "outbox-at-most": true, "loops-returned": true,
}

// Request is one request to the daemon.
type Request struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	// Name is the contact (contact-add, contact-verify, send).
	Name string `json:"name,omitempty"`
	// Card is a contact card as text (contact-add).
	Card string `json:"card,omitempty"`
	// Text or File is what to send.
	Text string `json:"text,omitempty"`
	File *File  `json:"file,omitempty"`
	// ID is a received message (read).
	ID string `json:"id,omitempty"`
	// Path and Passphrase are the backup file to write and its passphrase.
	Path       string `json:"path,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
	// Until and Timeout say what to wait for: "settled" (no message
	// queued or sent and not yet delivered or failed) or "received" (at
	// least Count messages in the inbox).
	Until   string        `json:"until,omitempty"`
	Count   int           `json:"count,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Other is the second contact of an introduction, or whom a desk
	// entry is passed to; Label and OtherLabel are the labels an
	// introduction shows (Label: how Other is shown to Name), or how a
	// conveyed message names its recipient (convey) or its sender (desk
	// pass); Note is the intermediary's note.
	Other      string `json:"other,omitempty"`
	Label      string `json:"label,omitempty"`
	OtherLabel string `json:"other_label,omitempty"`
	Note       string `json:"note,omitempty"`
	// Receipt is the receipt asked for: none, deniable or signed.
	Receipt string `json:"receipt,omitempty"`
	// Accept answers an introduction; Answer (yes or no) a check, or gives
	// the asker's own; Within is how long the asked side has.
	Accept bool          `json:"accept,omitempty"`
	Answer string        `json:"answer,omitempty"`
	Within time.Duration `json:"within,omitempty"`
}

// File is a file to send, or one received.
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Response is the daemon's answer.
type Response struct {
	Version int `json:"version"`
	// Error says in words why the request failed; empty on success.
	Error    string               `json:"error,omitempty"`
	Card     string               `json:"card,omitempty"`
	Contacts []client.ContactInfo `json:"contacts,omitempty"`
	Messages []client.MessageInfo `json:"messages,omitempty"`
	ID       string               `json:"id,omitempty"`
	Text     string               `json:"text,omitempty"`
	File     *File                `json:"file,omitempty"`
	Stats    *client.Stats        `json:"stats,omitempty"`
	// Network describes the network document (status).
	Network *client.NetworkInfo `json:"network,omitempty"`

	Introductions []client.IntroductionInfo `json:"introductions,omitempty"`
	Desk          []client.DeskEntry        `json:"desk,omitempty"`
	Conveyances   []client.ConveyInfo       `json:"conveyances,omitempty"`
	Checks        []client.CheckInfo        `json:"checks,omitempty"`
	Proof         *client.ReceiptProof      `json:"proof,omitempty"`
}

// ErrRequest is wrapped by every request decoding error.
var ErrRequest = errors.New("control: bad request")

// MaxWait bounds a wait request.
const MaxWait = time.Hour

// ParseRequest decodes and checks a request.
func ParseRequest(data []byte) (*Request, error) {
	if len(data) > MaxRequestSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrRequest, len(data), MaxRequestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the request", ErrRequest)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("%w: protocol version %d, this daemon speaks version %d", ErrRequest, r.Version, Version)
	}
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%w: %s needs %s", ErrRequest, r.Op, what)
		}
		return nil
	}
	var err error
	switch r.Op {
	case OpCard, OpContactList, OpInbox, OpStatus:
	case OpContactAdd:
		err = need(r.Name != "" && r.Card != "", "a name and a card")
	case OpContactVerify:
		err = need(r.Name != "", "a name")
	case OpContactExpire:
		err = need(r.Name != "" && r.Within >= 0, "a name and a duration (0: off)")
	case OpSend:
		err = need(r.Name != "" && (r.Text != "") != (r.File != nil), "a contact name and either a text or a file")
	case OpRead:
		err = need(r.ID != "", "a message ID")
	case OpBackup:
		err = need(r.Path != "" && r.Passphrase != "", "a path and a passphrase")
	case OpWait:
		err = need(waitConditions[r.Until] && r.Count >= 0 && r.Timeout > 0 && r.Timeout <= MaxWait,
			"a known condition and a timeout of at most an hour")
	case OpIntroList, OpConveyList, OpDeskList, OpCheckList, OpWipe:
	case OpIntroduce:
		err = need(r.Name != "" && r.Other != "" && r.Label != "" && r.OtherLabel != "", "two contacts and a label for each")
	case OpIntroAnswer, OpReceipt, OpDeskRefuse:
		err = need(r.ID != "", "an ID")
	case OpDeskPass:
		err = need(r.ID != "", "a desk entry ID")
	case OpConvey:
		err = need(r.Name != "" && r.Text != "" && validReceipt(r.Receipt), "an intermediary, a text and a receipt kind (none, deniable, signed)")
	case OpConveyReply:
		err = need(r.ID != "" && r.Text != "" && validReceipt(r.Receipt), "a conveyed message's ID, a text and a receipt kind")
	case OpCheckAsk:
		err = need(r.Name != "" && r.Text != "" && (r.Answer == "yes" || r.Answer == "no") && r.Within > 0 && r.Within <= 30*24*time.Hour,
			"a contact, a question, your answer (yes or no) and a time to answer within (at most 30 days)")
	case OpCheckAnswer:
		err = need(r.ID != "" && (r.Answer == "yes" || r.Answer == "no"), "a check ID and an answer (yes or no)")
	default:
		return nil, fmt.Errorf("%w: unknown operation %q", ErrRequest, r.Op)
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func validReceipt(s string) bool { return s == "" || s == "none" || s == "deniable" || s == "signed" }
