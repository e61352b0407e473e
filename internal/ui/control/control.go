// Package control is the local socket between a running client daemon and
// the command line: one JSON request per connection, one JSON response, on
// a Unix socket that only the user can open (mode 0600, in the 0700 state
// directory). The web interface asks the same operations.
//
// Each operation has a request type and a response type of its own
// (requests.go), and one entry in Commands, the table from which the
// command line's usage and help are written. On the socket a request is
//
//	{"version": 1, "op": "send", "args": {"to": "bob", "text": "…"}}
//
// and its response {"version": 1, "result": {…}} or {"version": 1,
// "error": "…"}. Requests are decoded strictly ([ParseRequest]: a version,
// a known operation, known fields only, sizes bounded, each request's
// Check), since anything that can open the socket can ask.
//
// It does not keep the client's state or schedule (package client) or
// parse the command line (cmd/backchannel).
package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/backchannel/backchannel/internal/client"
)

// Version is the protocol version of requests and responses. Version 2
// gave every operation a request type of its own (version 1 had one
// request with fields that meant different things to different
// operations).
const Version = 2

// MaxRequestSize bounds a request: a file of client.MaxFileSize bytes in
// base64, with room to spare.
const MaxRequestSize = 4*client.MaxFileSize/3 + 1<<16

// Request is an operation's request: each operation has a type of its own.
type Request interface {
	// Op names the operation.
	Op() string
	// Check says what is missing or wrong, before anything is done.
	Check() error
}

// envelope is a request on the socket.
type envelope struct {
	Version int             `json:"version"`
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args,omitempty"`
	// Token is an officer's login token (officers.go), if any.
	Token string `json:"token,omitempty"`
}

// Response is the daemon's answer on the socket: Result is the operation's
// response, encoded, or Error says in words why it failed.
type Response struct {
	Version int             `json:"version"`
	Error   string          `json:"error,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	// Drafted: the request was kept as a draft (Result is a
	// DraftedResponse), not done.
	Drafted bool `json:"drafted,omitempty"`
}

// ErrRequest is wrapped by every request decoding error.
var ErrRequest = errors.New("control: bad request")

// Marshal encodes a request for the socket.
func Marshal(r Request) ([]byte, error) { return marshalAs(r, "") }

// marshalAs encodes a request with an officer's login token.
func marshalAs(r Request, token string) ([]byte, error) {
	args, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return json.Marshal(envelope{Version: Version, Op: r.Op(), Args: args, Token: token})
}

// ParseRequest decodes and checks a request.
func ParseRequest(data []byte) (Request, error) {
	r, _, err := parseEnvelope(data)
	return r, err
}

// parseEnvelope decodes and checks a request, and returns its login token.
func parseEnvelope(data []byte) (Request, string, error) {
	if len(data) > MaxRequestSize {
		return nil, "", fmt.Errorf("%w: %d bytes, at most %d", ErrRequest, len(data), MaxRequestSize)
	}
	var e envelope
	if err := decodeStrict(data, &e); err != nil {
		return nil, "", err
	}
	r, err := e.request()
	return r, e.Token, err
}

// request decodes and checks the envelope's request.
func (e *envelope) request() (Request, error) {
	if e.Version != Version {
		return nil, fmt.Errorf("%w: protocol version %d, this daemon speaks version %d", ErrRequest, e.Version, Version)
	}
	cmd, ok := Lookup(e.Op)
	if !ok {
		return nil, fmt.Errorf("%w: unknown operation %q", ErrRequest, e.Op)
	}
	r := cmd.New()
	if len(e.Args) > 0 {
		if err := decodeStrict(e.Args, r); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Op, err)
		}
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("%w: %s needs %v", ErrRequest, e.Op, err)
	}
	return r, nil
}

// decodeStrict decodes one JSON value with known fields only.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the request", ErrRequest)
	}
	return nil
}
