package webui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/ui/control"
)

//go:embed assets
var embedded embed.FS

// DefaultLockAfter is how long the interface stays unlocked without the
// user touching it.
const DefaultLockAfter = 5 * time.Minute

// ContentSecurityPolicy is sent with every response: the interface's own
// scripts, styles, images and connections, and nothing else.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config says how a Server opens the client and when it locks.
type Config struct {
	// Open opens the client's state with the passphrase at the first
	// unlock and starts it, returning the control server that answers
	// the interface's requests. Later unlocks ask the client to check
	// the passphrase instead.
	Open func(passphrase []byte) (*control.Server, error)
	// LockAfter is the idle time after which the interface locks; zero
	// takes DefaultLockAfter.
	LockAfter time.Duration
	// Clock defaults to the real clock; Rand to crypto/rand.
	Clock  clock.Clock
	Rand   io.Reader
	Logger *slog.Logger
}

// Server is the web interface of one client.
type Server struct {
	cfg    Config
	origin string          // http://host:port
	hosts  map[string]bool // Host headers answered
	token  []byte
	cookie string

	unlocking sync.Mutex // one passphrase check at a time

	mu         sync.Mutex
	sessions   map[[sha256.Size]byte]*session // by the hash of the cookie value
	ctl        *control.Server                // nil until the first unlock
	locked     bool
	lastActive time.Time
	lockChange chan struct{} // closed when locked changes
	wiped      bool
}

type session struct {
	csrf string
	// officer is the officer whose passphrase this session last
	// unlocked with: who acts in its requests; lastActive is this
	// session's last activity, after which it locks on its own. Both
	// guarded by Server.mu.
	officer    string
	lastActive time.Time
}

// New makes the interface for the listener ln, which must be on a
// loopback address (see [Listen]), with a fresh secret token.
func New(cfg Config, ln net.Listener) (*Server, error) {
	if cfg.Open == nil {
		return nil, errors.New("webui: no way to open the client")
	}
	if cfg.LockAfter <= 0 {
		cfg.LockAfter = DefaultLockAfter
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !isLoopback(ln.Addr()) {
		return nil, fmt.Errorf("webui: %v is not a loopback address", ln.Addr())
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	s := &Server{
		cfg:        cfg,
		origin:     "http://" + ln.Addr().String(),
		hosts:      map[string]bool{ln.Addr().String(): true, "localhost:" + port: true},
		token:      make([]byte, 32),
		cookie:     "backchannel-" + port,
		sessions:   make(map[[sha256.Size]byte]*session),
		locked:     true,
		lockChange: make(chan struct{}),
	}
	if _, err := io.ReadFull(cfg.Rand, s.token); err != nil {
		return nil, fmt.Errorf("webui: making the token: %w", err)
	}
	return s, nil
}

// URL is the address to open: it carries the secret token.
func (s *Server) URL() string {
	return s.origin + "/?token=" + hex.EncodeToString(s.token)
}

// Serve answers requests on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	go s.lockWhenIdle(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// Requests derive their contexts from ctx, so the event streams
		// end now; a request still being answered (the wipe that stopped
		// the daemon) gets a few seconds to finish.
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			srv.Close()
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		srv.Close()
		return fmt.Errorf("webui: %w", err)
	}
	<-stopped
	return nil
}

// Handler returns the interface's HTTP handler, with every check of the
// package comment in front of it.
func (s *Server) Handler() http.Handler {
	assets, _ := fs.Sub(embedded, "assets")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index(assets))
	mux.Handle("GET /assets/", s.withSession(http.StripPrefix("/assets/", http.FileServerFS(assets))))
	mux.Handle("GET /api/session", s.withSession(http.HandlerFunc(s.serveSession)))
	mux.Handle("GET /api/events", s.withSession(http.HandlerFunc(s.serveEvents)))
	mux.Handle("POST /api/unlock", s.withSession(s.withCSRF(http.HandlerFunc(s.serveUnlock))))
	mux.Handle("POST /api/lock", s.withSession(s.withCSRF(http.HandlerFunc(s.serveLock))))
	mux.Handle("POST /api/activity", s.withSession(s.withCSRF(s.unlocked(s.serveActivity))))
	mux.Handle("POST /api/op", s.withSession(s.withCSRF(s.unlocked(s.serveOp))))
	mux.Handle("GET /api/qr", s.withSession(s.unlocked(s.serveQR)))
	mux.Handle("GET /api/card", s.withSession(s.unlocked(s.serveCard)))
	mux.Handle("GET /api/file", s.withSession(s.unlocked(s.serveFile)))
	mux.Handle("GET /api/proof", s.withSession(s.unlocked(s.serveProof)))
	return s.checkHost(mux)
}

// refuse answers a refused request with a reason in words.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	s.cfg.Logger.Info("web interface: request refused", "method", r.Method, "path", r.URL.Path, "reason", reason)
	http.Error(w, "refused: "+reason, status)
}

// checkHost sets the headers every response carries and refuses a Host
// header that is not the interface's own.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !s.hosts[r.Host] {
			s.refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("this interface answers only to %s, not to the host %q", s.origin, r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// index serves the page; with the URL's token it first opens a session
// and sends the browser back to the address without it.
func (s *Server) index(assets fs.FS) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" {
			given, err := hex.DecodeString(tok)
			if err != nil || subtle.ConstantTimeCompare(given, s.token) != 1 {
				s.refuse(w, r, http.StatusForbidden, "that is not this interface's token; open the address `backchannel ui` printed")
				return
			}
			value, err := s.newSession()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if s.session(r) == nil {
			s.refuse(w, r, http.StatusForbidden, "open the address `backchannel ui` printed, with its token")
			return
		}
		http.ServeFileFS(w, r, assets, "index.html")
	}
}

func (s *Server) newSession() (string, error) {
	var value, csrf [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, value[:]); err != nil {
		return "", err
	}
	if _, err := io.ReadFull(s.cfg.Rand, csrf[:]); err != nil {
		return "", err
	}
	v := hex.EncodeToString(value[:])
	s.mu.Lock()
	s.sessions[sha256.Sum256([]byte(v))] = &session{csrf: hex.EncodeToString(csrf[:])}
	s.mu.Unlock()
	return v, nil
}

// session returns the request's session, or nil. Sessions are looked up
// by the hash of the cookie, so that the lookup's timing tells nothing
// about the cookies that exist.
func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sha256.Sum256([]byte(c.Value))]
}

type sessionKey struct{}

func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			s.refuse(w, r, http.StatusForbidden, "no session: open the address `backchannel ui` printed, with its token")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

// withCSRF refuses a POST from anywhere but the interface's own page.
func (s *Server) withCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := r.Context().Value(sessionKey{}).(*session)
		if o := r.Header.Get("Origin"); o != "" && o != s.origin && o != "http://"+r.Host {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("a request from another origin (%q)", o))
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("a request from another site (Sec-Fetch-Site %q)", site))
			return
		}
		given := r.Header.Get("X-Backchannel-CSRF")
		if subtle.ConstantTimeCompare([]byte(given), []byte(sess.csrf)) != 1 {
			s.refuse(w, r, http.StatusForbidden, "a missing or wrong CSRF token")
			return
		}
		if mt := r.Header.Get("Content-Type"); mt != "application/json" {
			s.refuse(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("a body of type %q, not application/json", mt))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unlocked refuses requests while the interface is locked, and hands the
// others the control server as it was when the request came.
func (s *Server) unlocked(next func(http.ResponseWriter, *http.Request, *control.Server)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctl := s.control()
		sess := r.Context().Value(sessionKey{}).(*session)
		s.mu.Lock()
		officer := s.officerOf(sess)
		s.mu.Unlock()
		if ctl == nil || officer == "" {
			writeJSON(w, http.StatusLocked, errorBody{Error: "locked: unlock with your passphrase", Locked: true})
			return
		}
		next(w, r.WithContext(control.WithOfficer(r.Context(), officer)), ctl)
	})
}

// control returns the control server, or nil while locked; an idle time
// that has run out locks here, even before the timer says so.
func (s *Server) control() *control.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.locked && !s.cfg.Clock.Now().Before(s.lastActive.Add(s.cfg.LockAfter)) {
		s.setLocked(true)
	}
	if s.locked {
		return nil
	}
	return s.ctl
}

// setLocked changes the lock; s.mu is held.
func (s *Server) setLocked(locked bool) {
	if s.locked == locked {
		return
	}
	s.locked = locked
	close(s.lockChange)
	s.lockChange = make(chan struct{})
	if locked {
		// Each session unlocks again with its own officer's passphrase:
		// one officer's unlock never opens another's browser.
		for _, sess := range s.sessions {
			sess.officer = ""
		}
		s.cfg.Logger.Info("web interface locked")
	}
}

// officerOf returns the officer a session acts as, or "" while it is
// locked: a session idle for the lock time locks alone, whatever other
// sessions do. s.mu is held.
func (s *Server) officerOf(sess *session) string {
	if !s.cfg.Clock.Now().Before(sess.lastActive.Add(s.cfg.LockAfter)) {
		sess.officer = ""
	}
	return sess.officer
}

// touch records the user's activity in a session.
func (s *Server) touch(r *http.Request) {
	sess := r.Context().Value(sessionKey{}).(*session)
	s.mu.Lock()
	s.lastActive = s.cfg.Clock.Now()
	sess.lastActive = s.lastActive
	s.mu.Unlock()
}

// lockWhenIdle locks the interface when the idle time runs out, so that
// open pages learn it at once.
func (s *Server) lockWhenIdle(ctx context.Context) {
	for {
		s.mu.Lock()
		locked, change, deadline := s.locked, s.lockChange, s.lastActive.Add(s.cfg.LockAfter)
		s.mu.Unlock()
		if locked {
			select {
			case <-change:
				continue
			case <-ctx.Done():
				return
			}
		}
		t := s.cfg.Clock.NewTimerAt(deadline)
		select {
		case <-t.C():
			s.control() // locks if the deadline still stands
		case <-change:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// Wiped tells the interface that the state is gone: pages say so.
func (s *Server) Wiped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wiped = true
	s.ctl = nil
	s.setLocked(true)
}

// String keeps the token out of anything that prints the server.
func (s *Server) String() string { return "web interface at " + s.origin }
