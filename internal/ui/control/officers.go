package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// Who acts: every operation is taken by an officer who proved their
// passphrase to the daemon. The web interface's session knows its officer
// (it unlocked with their passphrase) and says so with WithOfficer; on the
// socket, a request carries the token that `officer login` gave (for one
// terminal, for LoginLifetime). An identity with one officer needs
// neither: its officer acts, as a single user did.

// LoginLifetime is how long an officer's login token is good for: a shift.
const LoginLifetime = 8 * time.Hour

type officerKey struct{}

// WithOfficer returns a context in which officer acts.
func WithOfficer(ctx context.Context, officer string) context.Context {
	return context.WithValue(ctx, officerKey{}, officer)
}

type tokenKey struct{}

// withToken returns a context carrying a request's login token.
func withToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// logins are the login tokens the daemon gave, by the hash of the token
// (the tokens themselves are not kept).
type logins struct {
	mu     sync.Mutex
	tokens map[[sha256.Size]byte]login
}

type login struct {
	officer string
	expires time.Time
}

// ErrLogin: the request names no officer who may act.
var ErrLogin = errors.New("control: this identity has several officers: log in first, with eval \"$(backchannel officer login)\"")

// actor names the officer who acts in ctx.
func (s *Server) actor(ctx context.Context) (string, error) {
	if officer, ok := ctx.Value(officerKey{}).(string); ok && officer != "" {
		return officer, nil
	}
	if token, ok := ctx.Value(tokenKey{}).(string); ok && token != "" {
		return s.logins.officer(token, s.now())
	}
	if sole := s.Client.SoleOfficer(); sole != "" {
		return sole, nil
	}
	return "", ErrLogin
}

func (s *Server) now() time.Time { return time.Now() }

// officer returns the officer of a login token that has not expired.
func (l *logins) officer(token string, now time.Time) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := sha256.Sum256([]byte(token))
	in, ok := l.tokens[h]
	if !ok || !now.Before(in.expires) {
		delete(l.tokens, h)
		return "", fmt.Errorf("%w (the token is unknown or expired)", ErrLogin)
	}
	return in.officer, nil
}

// issue makes a login token for officer.
func (l *logins) issue(officer string, now time.Time) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, err
	}
	token := hex.EncodeToString(b[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens == nil {
		l.tokens = map[[sha256.Size]byte]login{}
	}
	for h, in := range l.tokens {
		if !now.Before(in.expires) {
			delete(l.tokens, h)
		}
	}
	expires := now.Add(LoginLifetime)
	l.tokens[sha256.Sum256([]byte(token))] = login{officer: officer, expires: expires}
	return token, expires, nil
}

// revoke forgets a token.
func (l *logins) revoke(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.tokens, sha256.Sum256([]byte(token)))
}

type (
	// OfficerLoginRequest proves an officer's passphrase to the daemon;
	// the response's token lets that terminal act as them.
	OfficerLoginRequest struct {
		Passphrase string `json:"passphrase"`
	}
	OfficerLoginResponse struct {
		Officer string    `json:"officer"`
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	// OfficerLogoutRequest forgets the request's login token.
	OfficerLogoutRequest struct{}
	// OfficerListRequest lists the identity's officers and their roles.
	OfficerListRequest  struct{}
	OfficerListResponse struct {
		Officers []client.Officer `json:"officers"`
	}
	// OfficerAddRequest adds an officer, who will unlock with Passphrase
	// (typed by them), holding Roles.
	OfficerAddRequest struct {
		Name       string        `json:"name"`
		Passphrase string        `json:"passphrase"`
		Roles      []client.Role `json:"roles"`
	}
	// OfficerRemoveRequest removes an officer: their passphrase opens
	// nothing of the state from then on.
	OfficerRemoveRequest struct {
		Name string `json:"name"`
	}
	// OfficerPassphraseRequest gives the officer who asks a new
	// passphrase.
	OfficerPassphraseRequest struct {
		Passphrase string `json:"passphrase"`
	}
	// OfficerRoleRequest gives an officer the roles.
	OfficerRoleRequest struct {
		Name  string        `json:"name"`
		Roles []client.Role `json:"roles"`
	}
)

func (OfficerLoginRequest) Op() string      { return "officer-login" }
func (OfficerLogoutRequest) Op() string     { return "officer-logout" }
func (OfficerListRequest) Op() string       { return "officer-list" }
func (OfficerAddRequest) Op() string        { return "officer-add" }
func (OfficerRemoveRequest) Op() string     { return "officer-remove" }
func (OfficerRoleRequest) Op() string       { return "officer-role" }
func (OfficerPassphraseRequest) Op() string { return "officer-passphrase" }
func (r OfficerPassphraseRequest) Check() error {
	return need(r.Passphrase != "", "the new passphrase")
}

func (r OfficerLoginRequest) Check() error { return need(r.Passphrase != "", "a passphrase") }
func (OfficerLogoutRequest) Check() error  { return nil }
func (OfficerListRequest) Check() error    { return nil }
func (r OfficerAddRequest) Check() error {
	return need(r.Name != "" && r.Passphrase != "" && len(r.Roles) > 0, "a name, a passphrase and roles")
}
func (r OfficerRemoveRequest) Check() error { return need(r.Name != "", "a name") }
func (r OfficerRoleRequest) Check() error {
	return need(r.Name != "" && len(r.Roles) > 0, "a name and roles")
}

// login answers a login: before anyone acts, so outside Handle's checks.
func (s *Server) login(ctx context.Context, r Request) (any, bool, error) {
	switch r := r.(type) {
	case *OfficerLoginRequest:
		officer, err := s.Client.OfficerOf([]byte(r.Passphrase))
		if err != nil {
			return nil, true, err
		}
		token, expires, err := s.logins.issue(officer, s.now())
		if err != nil {
			return nil, true, err
		}
		return OfficerLoginResponse{Officer: officer, Token: token, Expires: expires}, true, s.Client.Record(officer, "officer-login", "")
	case *OfficerLogoutRequest:
		if token, ok := ctx.Value(tokenKey{}).(string); ok {
			s.logins.revoke(token)
		}
		return struct{}{}, true, nil
	}
	return nil, false, nil
}

// handleOfficers answers the officers' requests. The client records their
// changes in the audit trail itself (client/officers.go).
func (s *Server) handleOfficers(by string, r Request) (any, bool, error) {
	c := s.Client
	var err error
	switch r := r.(type) {
	case *OfficerListRequest:
	case *OfficerAddRequest:
		err = c.AddOfficer(by, r.Name, []byte(r.Passphrase), r.Roles)
	case *OfficerRemoveRequest:
		err = c.RemoveOfficer(by, r.Name)
	case *OfficerRoleRequest:
		err = c.SetRoles(by, r.Name, r.Roles)
	case *OfficerPassphraseRequest:
		err = c.ChangePassphrase(by, []byte(r.Passphrase))
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return OfficerListResponse{Officers: c.Officers()}, true, nil
}
