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
	"github.com/backchannel/backchannel/internal/features"
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
	// Features are the client's features (features.Register).
	Features *features.Set
	// BackupParams are the passphrase hashing parameters of backups.
	BackupParams vault.Params
	// Wiped is called after a wipe request has wiped the state: the
	// daemon stops.
	Wiped  func()
	Logger *slog.Logger

	logins logins
	seen   inboxSeen
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
	var resp Response
	if err != nil {
		resp = Response{Error: fmt.Sprintf("reading the request: %v", err)}
	} else if req, token, err := parseEnvelope(data); err != nil {
		resp = Response{Error: err.Error()}
	} else {
		resp = Encode(s.Handle(withToken(ctx, token), req))
	}
	resp.Version = Version
	conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := json.NewEncoder(conn).Encode(resp); err != nil && s.Logger != nil {
		s.Logger.Warn("control: writing a response", "err", err)
	}
}

// Encode makes the response to send of what Handle returned.
func Encode(result any, err error) Response {
	if err != nil {
		return Response{Version: Version, Error: err.Error()}
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return Response{Version: Version, Error: fmt.Sprintf("encoding the response: %v", err)}
	}
	_, drafted := result.(DraftedResponse)
	return Response{Version: Version, Result: raw, Drafted: drafted}
}

// Handle answers one request that [ParseRequest] accepted, with the
// operation's response; the web interface calls it too, so both ask the
// same operations.
//
// The officer who acts is the context's (WithOfficer, or a login token on
// the socket), or the identity's one officer; the operation needs the role
// its command names (Command.Role).
func (s *Server) Handle(ctx context.Context, r Request) (any, error) {
	if resp, ok, err := s.login(ctx, r); ok {
		return resp, err
	}
	by, err := s.actor(ctx)
	if err != nil {
		return nil, err
	}
	if cmd, ok := Lookup(r.Op()); ok {
		if err := s.Client.May(by, cmd.role()); err != nil {
			return nil, err
		}
	}
	if resp, ok, err := s.draftIfHeld(by, r); ok {
		return resp, err
	}
	resp, err := s.handle(ctx, by, r)
	if err != nil {
		return resp, err
	}
	if list, ok := resp.(MessagesResponse); ok {
		if err := s.seen.record(s.Client, by, list.Messages); err != nil {
			return resp, fmt.Errorf("the audit trail did not record what you were shown: %w", err)
		}
	}
	if action, object, ok := audited(r, resp); ok {
		if err := s.Client.Record(by, action, object); err != nil {
			return resp, fmt.Errorf("done, but the audit trail did not record it: %w", err)
		}
	}
	return resp, nil
}

func (s *Server) handle(ctx context.Context, by string, r Request) (any, error) {
	if resp, ok, err := s.handleAudit(by, r); ok {
		return resp, err
	}
	if resp, ok, err := s.handleOfficers(by, r); ok {
		return resp, err
	}
	if resp, ok, err := s.handleDrafts(ctx, by, r); ok {
		return resp, err
	}
	c := s.Client
	switch r := r.(type) {
	case *CardRequest:
		card := c.Self()
		if r.Classical {
			card = c.ClassicalCard()
		}
		text, err := card.MarshalText()
		return CardResponse{Card: string(text)}, err
	case *ContactAddRequest:
		card, err := identity.ParseCardText([]byte(r.Card))
		if err != nil {
			return nil, err
		}
		return s.contacts(c.AddContact(r.Name, card))
	case *ContactListRequest:
		return s.contacts(nil)
	case *ContactVerifyRequest:
		return s.contacts(c.Verify(r.Name))
	case *ContactBudgetRequest:
		return s.contacts(c.SetTimeBudget(r.Name, r.Budget))
	case *ContactRenameRequest:
		return s.contacts(c.Rename(r.Name, r.NewName))
	case *ContactExpireRequest:
		return s.contacts(s.Features.Expiry.Set(r.Name, r.After))
	case *SendRequest:
		content := client.Content{Kind: client.Text, Body: []byte(r.Text)}
		if r.File != nil {
			content = client.Content{Kind: client.File, Name: r.File.Name, Body: r.File.Data}
		}
		return id(c.SendBy(r.To, content, r.Within, by, approverIn(ctx)))
	case *InboxRequest:
		msgs, err := c.Inbox()
		return MessagesResponse{Messages: msgs}, err
	case *ReadRequest:
		content, err := c.Received(r.ID)
		if err != nil {
			return nil, err
		}
		if content.Kind == client.File {
			return ReadResponse{File: &File{Name: content.Name, Data: content.Body}}, nil
		}
		return ReadResponse{Text: string(content.Body)}, nil
	case *StatusRequest:
		return s.status(), nil
	case *CancelRequest:
		return Empty{}, c.Cancel(r.ID)
	case *RetryRequest:
		return id(c.Retry(r.ID))
	case *BackupRequest:
		return Empty{}, s.backup(r)
	case *WaitRequest:
		return s.wait(ctx, r)
	case *WipeRequest:
		if err := c.Wipe(); err != nil {
			return nil, err
		}
		if s.Wiped != nil {
			s.Wiped()
		}
		return Empty{}, nil
	}
	return s.handleFeature(r)
}

// contacts answers a contact operation with the contact list.
func (s *Server) contacts(err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return ContactsResponse{Contacts: s.Client.Contacts()}, nil
}

// id answers an operation that made something with its ID.
func id(id string, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return IDResponse{ID: id}, nil
}

func (s *Server) status() StatusResponse {
	c := s.Client
	stats := c.Stats()
	resp := StatusResponse{Messages: c.Outbox(), Stats: &stats}
	if info, ok := c.NetworkInfo(); ok {
		resp.Network = &info
	}
	return resp
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
func (s *Server) handleFeature(r Request) (any, error) {
	f := s.Features
	if f == nil {
		return nil, fmt.Errorf("control: this daemon serves no features, not %q", r.Op())
	}
	switch r := r.(type) {
	case *IntroduceRequest:
		return id(f.Intro.Introduce(r.A, r.B, r.LabelForA, r.LabelForB, r.Note))
	case *IntroListRequest:
		list, err := f.Intro.Introductions()
		return IntroductionsResponse{Introductions: list}, err
	case *IntroAnswerRequest:
		return Empty{}, f.Intro.Answer(r.ID, r.Accept)
	case *ConveyRequest:
		return id(f.Convey.Convey(r.Via, r.To, r.Text, receiptKind(r.Receipt)))
	case *ConveyReplyRequest:
		return id(f.Convey.Reply(r.ID, r.Text, receiptKind(r.Receipt)))
	case *ConveyListRequest:
		list, err := f.Convey.Conveyances()
		return ConveyancesResponse{Conveyances: list}, err
	case *ReceiptRequest:
		proof, err := f.Convey.Proof(r.ID)
		return ProofResponse{Proof: proof}, err
	case *DeskListRequest:
		desk, err := f.Convey.Desk()
		return DeskResponse{Desk: desk}, err
	case *DeskPassRequest:
		return Empty{}, f.Convey.PassOn(r.ID, r.To, r.As, r.Note)
	case *DeskRefuseRequest:
		return Empty{}, f.Convey.Refuse(r.ID, r.Note)
	case *CheckAskRequest:
		return id(f.Interest.Ask(r.With, r.Question, answer(r.Answer), r.Within))
	case *CheckAnswerRequest:
		return Empty{}, f.Interest.AnswerCheck(r.ID, answer(r.Answer))
	case *CheckListRequest:
		list, err := f.Interest.Checks()
		return ChecksResponse{Checks: list}, err
	}
	return nil, fmt.Errorf("control: no handler for %q", r.Op())
}

// backup writes a backup file, created with mode 0600 and moved into place
// only once complete.
func (s *Server) backup(r *BackupRequest) error {
	if !filepath.IsAbs(r.Path) {
		return fmt.Errorf("the backup path %q is not absolute", r.Path)
	}
	f, err := renameio.NewPendingFile(r.Path, renameio.WithStaticPermissions(0o600), renameio.WithTempDir(filepath.Dir(r.Path)))
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	defer f.Cleanup()
	err = s.Client.Backup(f, []byte(r.Passphrase), s.BackupParams)
	if err == nil {
		err = f.CloseAtomicallyReplace()
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	return nil
}

// ErrTimeout: a wait ran out.
var ErrTimeout = errors.New("timed out")

// wait blocks until the condition holds, at every change the client
// reports, or the timeout passes.
func (s *Server) wait(ctx context.Context, r *WaitRequest) (any, error) {
	c := s.Client
	deadline := time.NewTimer(r.Timeout)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		done, err := s.holds(r)
		if err != nil {
			return nil, err
		}
		if done {
			return s.status(), nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("%w after %v waiting until %s", ErrTimeout, r.Timeout, r.Until)
		case <-ctx.Done():
			return nil, errors.New("the daemon is stopping")
		}
	}
}

func (s *Server) holds(r *WaitRequest) (bool, error) {
	c := s.Client
	if s.Features == nil && r.Until != "settled" && r.Until != "received" && r.Until != "inbox-at-most" && r.Until != "outbox-at-most" && r.Until != "loops-returned" {
		return false, fmt.Errorf("control: this daemon serves no features to wait for (%s)", r.Until)
	}
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
		list, err := s.Features.Intro.Introductions()
		n := 0
		for _, in := range list {
			if r.Until == "introductions" || in.State == "done" {
				n++
			}
		}
		return count(n, err)
	case "desk":
		desk, err := s.Features.Convey.Desk()
		return count(len(desk), err)
	case "conveyed":
		list, err := s.Features.Convey.Conveyances()
		n := 0
		for _, cv := range list {
			if cv.State != "sent" {
				n++
			}
		}
		return count(n, err)
	case "checks", "checks-done":
		list, err := s.Features.Interest.Checks()
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
