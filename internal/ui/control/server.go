package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/interest"
)

// Listen opens the socket at path, readable and writable by the user only.
// A socket file left by a daemon that is gone is replaced; one that answers
// is not.
func Listen(path string) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: a daemon is already listening on %s", path)
	}
	os.Remove(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

// Server answers requests for one client.
type Server struct {
	Client *client.Client
	// BackupParams are the passphrase hashing parameters of backups.
	BackupParams vault.Params
	// Wiped is called after a wipe request has wiped the state: the
	// daemon stops.
	Wiped  func()
	Logger *slog.Logger
}

// Serve answers connections on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			s.serveConn(ctx, conn)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	data, err := io.ReadAll(io.LimitReader(conn, MaxRequestSize+1))
	var resp *Response
	if err != nil {
		resp = &Response{Error: fmt.Sprintf("reading the request: %v", err)}
	} else if req, err := ParseRequest(data); err != nil {
		resp = &Response{Error: err.Error()}
	} else {
		resp = s.Handle(ctx, req)
	}
	resp.Version = Version
	conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := json.NewEncoder(conn).Encode(resp); err != nil && s.Logger != nil {
		s.Logger.Warn("control: writing a response", "err", err)
	}
}

// Handle answers one request that [ParseRequest] accepted; the web
// interface calls it too, so both ask the same operations.
func (s *Server) Handle(ctx context.Context, r *Request) *Response {
	c := s.Client
	fail := func(err error) *Response { return &Response{Error: err.Error()} }
	switch r.Op {
	case OpCard:
		text, err := c.Self().MarshalText()
		if err != nil {
			return fail(err)
		}
		return &Response{Card: string(text)}
	case OpContactAdd:
		card, err := identity.ParseCardText([]byte(r.Card))
		if err != nil {
			return fail(err)
		}
		if err := c.AddContact(r.Name, card); err != nil {
			return fail(err)
		}
		return &Response{Contacts: c.Contacts()}
	case OpContactList:
		return &Response{Contacts: c.Contacts()}
	case OpContactVerify:
		if err := c.Verify(r.Name); err != nil {
			return fail(err)
		}
		return &Response{Contacts: c.Contacts()}
	case OpContactExpire:
		if err := c.SetExpiry(r.Name, r.Within); err != nil {
			return fail(err)
		}
		return &Response{Contacts: c.Contacts()}
	case OpSend:
		content := client.Content{Kind: client.Text, Body: []byte(r.Text)}
		if r.File != nil {
			content = client.Content{Kind: client.File, Name: r.File.Name, Body: r.File.Data}
		}
		id, err := c.Send(r.Name, content)
		if err != nil {
			return fail(err)
		}
		return &Response{ID: id}
	case OpInbox:
		msgs, err := c.Inbox()
		if err != nil {
			return fail(err)
		}
		return &Response{Messages: msgs}
	case OpRead:
		content, err := c.Received(r.ID)
		if err != nil {
			return fail(err)
		}
		if content.Kind == client.File {
			return &Response{File: &File{Name: content.Name, Data: content.Body}}
		}
		return &Response{Text: string(content.Body)}
	case OpStatus:
		stats := c.Stats()
		resp := &Response{Messages: c.Outbox(), Stats: &stats}
		if info, ok := c.NetworkInfo(); ok {
			resp.Network = &info
		}
		return resp
	case OpBackup:
		return s.backup(r)
	case OpWait:
		return s.wait(ctx, r)
	case OpWipe:
		if err := c.Wipe(); err != nil {
			return fail(err)
		}
		if s.Wiped != nil {
			s.Wiped()
		}
		return &Response{}
	}
	return s.handleFeature(r)
}

// receiptKind maps a request's receipt word to its kind.
func receiptKind(s string) convey.ReceiptKind {
	switch s {
	case "deniable":
		return convey.DeniableReceipt
	case "signed":
		return convey.SignedReceipt
	}
	return convey.NoReceipt
}

func answer(s string) interest.Answer {
	if s == "yes" {
		return interest.Yes
	}
	return interest.No
}

// handleFeature answers the requests of introductions, conveyance and
// mutual interest checks.
func (s *Server) handleFeature(r *Request) *Response {
	c := s.Client
	fail := func(err error) *Response { return &Response{Error: err.Error()} }
	switch r.Op {
	case OpIntroduce:
		id, err := c.Introduce(r.Name, r.Other, r.Label, r.OtherLabel, r.Note)
		if err != nil {
			return fail(err)
		}
		return &Response{ID: id}
	case OpIntroList:
		list, err := c.Introductions()
		if err != nil {
			return fail(err)
		}
		return &Response{Introductions: list}
	case OpIntroAnswer:
		if err := c.AnswerIntroduction(r.ID, r.Accept); err != nil {
			return fail(err)
		}
		return &Response{}
	case OpConvey:
		id, err := c.Convey(r.Name, r.Label, r.Text, receiptKind(r.Receipt))
		if err != nil {
			return fail(err)
		}
		return &Response{ID: id}
	case OpConveyReply:
		id, err := c.ReplyConveyed(r.ID, r.Text, receiptKind(r.Receipt))
		if err != nil {
			return fail(err)
		}
		return &Response{ID: id}
	case OpConveyList:
		list, err := c.Conveyances()
		if err != nil {
			return fail(err)
		}
		return &Response{Conveyances: list}
	case OpReceipt:
		proof, err := c.Proof(r.ID)
		if err != nil {
			return fail(err)
		}
		return &Response{Proof: proof}
	case OpDeskList:
		desk, err := c.Desk()
		if err != nil {
			return fail(err)
		}
		return &Response{Desk: desk}
	case OpDeskPass:
		if err := c.PassOn(r.ID, r.Other, r.Label, r.Note); err != nil {
			return fail(err)
		}
		return &Response{}
	case OpDeskRefuse:
		if err := c.Refuse(r.ID, r.Note); err != nil {
			return fail(err)
		}
		return &Response{}
	case OpCheckAsk:
		id, err := c.Ask(r.Name, r.Text, answer(r.Answer), r.Within)
		if err != nil {
			return fail(err)
		}
		return &Response{ID: id}
	case OpCheckAnswer:
		if err := c.AnswerCheck(r.ID, answer(r.Answer)); err != nil {
			return fail(err)
		}
		return &Response{}
	case OpCheckList:
		list, err := c.Checks()
		if err != nil {
			return fail(err)
		}
		return &Response{Checks: list}
	}
	return fail(fmt.Errorf("unknown operation %q", r.Op))
}

// backup writes a backup file, created with mode 0600 and moved into place
// only once complete.
func (s *Server) backup(r *Request) *Response {
	if !filepath.IsAbs(r.Path) {
		return &Response{Error: fmt.Sprintf("the backup path %q is not absolute", r.Path)}
	}
	f, err := renameio.NewPendingFile(r.Path, renameio.WithStaticPermissions(0o600), renameio.WithTempDir(filepath.Dir(r.Path)))
	if err != nil {
		return &Response{Error: fmt.Sprintf("writing the backup: %v", err)}
	}
	defer f.Cleanup()
	err = s.Client.Backup(f, []byte(r.Passphrase), s.BackupParams)
	if err == nil {
		err = f.CloseAtomicallyReplace()
	}
	if err != nil {
		return &Response{Error: fmt.Sprintf("writing the backup: %v", err)}
	}
	return &Response{}
}

// ErrTimeout: a wait ran out.
var ErrTimeout = errors.New("timed out")

// wait blocks until the condition holds, at every change the client
// reports, or the timeout passes.
func (s *Server) wait(ctx context.Context, r *Request) *Response {
	c := s.Client
	deadline := time.NewTimer(r.Timeout)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		done, err := s.holds(r)
		if err != nil {
			return &Response{Error: err.Error()}
		}
		if done {
			stats := c.Stats()
			return &Response{Messages: c.Outbox(), Stats: &stats}
		}
		select {
		case <-changed:
		case <-deadline.C:
			return &Response{Error: fmt.Sprintf("%v after %v waiting until %s", ErrTimeout, r.Timeout, r.Until)}
		case <-ctx.Done():
			return &Response{Error: "the daemon is stopping"}
		}
	}
}

func (s *Server) holds(r *Request) (bool, error) {
	c := s.Client
	count := func(n int, err error) (bool, error) { return n >= r.Count, err }
	switch r.Until {
	case "received":
		return count(c.InboxSize())
	case "inbox-at-most":
		n, err := c.InboxSize()
		return n <= r.Count, err
	case "outbox-at-most":
		return len(c.Outbox()) <= r.Count, nil
	case "loops-returned":
		return count(int(c.Stats().LoopsReturned), nil)
	case "introductions", "introductions-done":
		list, err := c.Introductions()
		n := 0
		for _, in := range list {
			if r.Until == "introductions" || in.State == "done" {
				n++
			}
		}
		return count(n, err)
	case "desk":
		desk, err := c.Desk()
		return count(len(desk), err)
	case "conveyed":
		list, err := c.Conveyances()
		n := 0
		for _, cv := range list {
			if cv.State != "sent" {
				n++
			}
		}
		return count(n, err)
	case "checks", "checks-done":
		list, err := c.Checks()
		n := 0
		for _, ch := range list {
			if r.Until == "checks" || ch.Result != interest.Pending.String() {
				n++
			}
		}
		return count(n, err)
	}
	for _, m := range c.Outbox() {
		if m.Status == client.Queued || m.Status == client.Sent {
			return false, nil
		}
	}
	return true, nil
}
