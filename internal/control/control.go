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
)

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
	case OpSend:
		err = need(r.Name != "" && (r.Text != "") != (r.File != nil), "a contact name and either a text or a file")
	case OpRead:
		err = need(r.ID != "", "a message ID")
	case OpBackup:
		err = need(r.Path != "" && r.Passphrase != "", "a path and a passphrase")
	case OpWait:
		err = need((r.Until == "settled" || r.Until == "received") && r.Count >= 0 && r.Timeout > 0 && r.Timeout <= MaxWait,
			`until "settled" or "received", and a timeout of at most an hour`)
	default:
		return nil, fmt.Errorf("%w: unknown operation %q", ErrRequest, r.Op)
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}
