package webui

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/ui/control"
)

const passphrase = "correct horse battery staple"

// testUI is a running interface over a client that never connects (the
// requests tested here need only its state).
type testUI struct {
	t      *testing.T
	s      *Server
	clock  *clock.Fake
	origin string // http://127.0.0.1:port
	opens  int    // successful opens of the client
	cookie *http.Cookie
	csrf   string
}

func newTestUI(t *testing.T) *testUI {
	t.Helper()
	dir := t.TempDir()
	authority, _, _ := ed25519.GenerateKey(rand.Reader)
	network := client.Network{Authorities: []ed25519.PublicKey{authority}, Threshold: 1, ClockSkew: time.Minute,
		Provider: client.Provider{Name: "provider-a", Address: "127.0.0.1:1"}}
	fast := vault.Params{Time: 1, MemoryKiB: 8, Threads: 1}
	c, _, err := client.Create(client.Config{Dir: dir, Passphrase: []byte(passphrase), VaultParams: fast, Rand: rand.Reader}, network)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	u := &testUI{t: t, clock: clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))}
	open := func(pass []byte) (*control.Server, error) {
		c, err := client.Open(client.Config{Dir: dir, Passphrase: pass, VaultParams: fast, Rand: rand.Reader})
		if err != nil {
			return nil, err
		}
		u.opens++
		t.Cleanup(c.Close)
		return &control.Server{Client: c}, nil
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.s, err = New(Config{Open: open, LockAfter: 5 * time.Minute, Clock: u.clock}, ln)
	if err != nil {
		t.Fatal(err)
	}
	u.origin = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return u
}

// noRedirects is an HTTP client that shows redirects instead of following
// them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// request sends a request; edit changes it before it goes.
func (u *testUI) request(method, path, body string, edit func(*http.Request)) (*http.Response, string) {
	u.t.Helper()
	r, err := http.NewRequest(method, u.origin+path, strings.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	if u.cookie != nil {
		r.AddCookie(u.cookie)
	}
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Backchannel-CSRF", u.csrf)
		r.Header.Set("Origin", u.origin)
	}
	if edit != nil {
		edit(r)
	}
	resp, err := noRedirects.Do(r)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func (u *testUI) expect(resp *http.Response, body string, status int, what string) {
	u.t.Helper()
	if resp.StatusCode != status {
		u.t.Fatalf("%s: status %d, want %d: %s", what, resp.StatusCode, status, body)
	}
}

// login opens a session with the URL's token, as the browser does.
func (u *testUI) login() {
	u.t.Helper()
	link, err := url.Parse(u.s.URL())
	if err != nil {
		u.t.Fatal(err)
	}
	resp, body := u.request(http.MethodGet, "/?"+link.RawQuery, "", nil)
	u.expect(resp, body, http.StatusSeeOther, "the token")
	if loc := resp.Header.Get("Location"); loc != "/" {
		u.t.Fatalf("the token redirects to %q, not / (the token must leave the address bar)", loc)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		u.t.Fatalf("the session cookie: %+v; want one, HttpOnly and SameSite=Strict", cookies)
	}
	u.cookie = cookies[0]
	resp, body = u.request(http.MethodGet, "/api/session", "", nil)
	u.expect(resp, body, http.StatusOK, "the session")
	var s sessionInfo
	if err := json.Unmarshal([]byte(body), &s); err != nil || len(s.CSRF) != 64 {
		u.t.Fatalf("the session: %s (%v)", body, err)
	}
	u.csrf = s.CSRF
}

func (u *testUI) unlock(pass string) (*http.Response, string) {
	u.t.Helper()
	b, _ := json.Marshal(map[string][]byte{"passphrase": []byte(pass)})
	return u.request(http.MethodPost, "/api/unlock", string(b), nil)
}

func (u *testUI) contacts() (*http.Response, string) {
	u.t.Helper()
	return u.request(http.MethodPost, "/api/op", `{"version":2,"op":"contact-list"}`, nil)
}

func TestListenOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		ln, err := Listen(addr)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%q) listened on %v", addr, ln.Addr())
		}
		if !strings.Contains(err.Error(), "loopback") && !strings.Contains(err.Error(), "missing port") {
			t.Errorf("Listen(%q): %v, which does not say why", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		bound := ln.Addr().(*net.TCPAddr)
		ln.Close()
		if !bound.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("Listen(%q) is bound to %v, not 127.0.0.1", addr, bound)
		}
	}
}

func TestTokenOpensASession(t *testing.T) {
	u := newTestUI(t)
	for _, path := range []string{"/", "/?token=" + strings.Repeat("0", 64), "/?token=xyz", "/api/session", "/assets/app.js"} {
		resp, body := u.request(http.MethodGet, path, "", nil)
		u.expect(resp, body, http.StatusForbidden, "GET "+path+" without a session")
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("GET %s without the token set a cookie", path)
		}
	}
	u.login()
	resp, body := u.request(http.MethodGet, "/", "", nil)
	u.expect(resp, body, http.StatusOK, "the page with a session")
	if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Fatalf("Content-Security-Policy %q", got)
	}
	if !strings.Contains(body, `<script type="module" src="/assets/app.js">`) || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Fatalf("the page loads something from elsewhere, or not its script:\n%s", body)
	}
	resp, body = u.request(http.MethodGet, "/assets/app.js", "", nil)
	u.expect(resp, body, http.StatusOK, "the script")
	// A forged cookie is no session.
	u.cookie = &http.Cookie{Name: u.cookie.Name, Value: strings.Repeat("a", 64)}
	resp, body = u.request(http.MethodGet, "/api/session", "", nil)
	u.expect(resp, body, http.StatusForbidden, "a forged cookie")
}

func TestForeignHostRefused(t *testing.T) {
	u := newTestUI(t)
	u.login()
	port := strings.TrimPrefix(u.origin, "http://127.0.0.1:")
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1:1", "10.0.0.1:" + port} {
		for _, path := range []string{"/", "/api/session", "/?token=" + strings.Split(u.s.URL(), "token=")[1]} {
			resp, body := u.request(http.MethodGet, path, "", func(r *http.Request) { r.Host = host })
			u.expect(resp, body, http.StatusMisdirectedRequest, "Host "+host)
		}
		resp, body := u.request(http.MethodPost, "/api/op", `{"version":2,"op":"contact-list"}`, func(r *http.Request) { r.Host = host })
		u.expect(resp, body, http.StatusMisdirectedRequest, "a POST with Host "+host)
	}
	resp, body := u.request(http.MethodGet, "/api/session", "", func(r *http.Request) { r.Host = "localhost:" + port })
	u.expect(resp, body, http.StatusOK, "Host localhost")
}

func TestCrossSiteRequestsRefused(t *testing.T) {
	u := newTestUI(t)
	u.login()
	cases := []struct {
		what   string
		edit   func(*http.Request)
		status int
	}{
		{"no CSRF token", func(r *http.Request) { r.Header.Del("X-Backchannel-CSRF") }, http.StatusForbidden},
		{"a wrong CSRF token", func(r *http.Request) { r.Header.Set("X-Backchannel-CSRF", strings.Repeat("0", 64)) }, http.StatusForbidden},
		{"another origin", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, http.StatusForbidden},
		{"another site", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"a form's content type", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, http.StatusUnsupportedMediaType},
		{"no cookie", func(r *http.Request) { r.Header.Del("Cookie") }, http.StatusForbidden},
	}
	for _, path := range []string{"/api/unlock", "/api/lock", "/api/op", "/api/activity"} {
		for _, c := range cases {
			resp, body := u.request(http.MethodPost, path, `{"version":2,"op":"contact-list"}`, c.edit)
			u.expect(resp, body, c.status, path+" with "+c.what)
		}
	}
	if u.opens != 0 {
		t.Fatalf("a refused request opened the client")
	}
	// The page's own requests pass.
	resp, body := u.unlock(passphrase)
	u.expect(resp, body, http.StatusOK, "unlocking")
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusOK, "the contacts")
	resp, body = u.request(http.MethodPost, "/api/op", `{"version":2,"op":"backup","args":{"path":"/tmp/x","passphrase":"p"}}`, nil)
	u.expect(resp, body, http.StatusBadRequest, "a backup (it writes a file where the request says)")
	resp, body = u.request(http.MethodPost, "/api/op", `{"version":2,"op":"contact-list","evil":1}`, nil)
	u.expect(resp, body, http.StatusBadRequest, "an unknown field")
}

func TestLocksWhenIdle(t *testing.T) {
	u := newTestUI(t)
	u.login()
	resp, body := u.contacts()
	u.expect(resp, body, http.StatusLocked, "before the first unlock")
	resp, body = u.unlock("wrong")
	u.expect(resp, body, http.StatusForbidden, "a wrong passphrase")
	if !strings.Contains(body, "does not open") {
		t.Fatalf("a wrong passphrase says %s", body)
	}
	resp, body = u.unlock(passphrase)
	u.expect(resp, body, http.StatusOK, "unlocking")
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusOK, "unlocked")

	// Use keeps it open; idle time locks it.
	u.clock.Advance(4 * time.Minute)
	resp, body = u.request(http.MethodPost, "/api/activity", "{}", nil)
	u.expect(resp, body, http.StatusOK, "activity")
	u.clock.Advance(4 * time.Minute)
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusOK, "4 minutes after the last activity")
	u.clock.Advance(time.Minute)
	for _, path := range []string{"/api/qr?name=x", "/api/card", "/api/file?id=00"} {
		resp, body = u.request(http.MethodGet, path, "", nil)
		u.expect(resp, body, http.StatusLocked, path+" when idle for 5 minutes")
	}
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusLocked, "idle for 5 minutes")

	// Unlocking again checks the passphrase with the open client.
	resp, body = u.unlock("wrong")
	u.expect(resp, body, http.StatusForbidden, "a wrong passphrase when locked")
	resp, body = u.unlock(passphrase)
	u.expect(resp, body, http.StatusOK, "unlocking again")
	resp, body = u.request(http.MethodGet, "/api/card", "", nil)
	u.expect(resp, body, http.StatusOK, "the card")
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Fatalf("the card is sent as %q, not as an attachment", cd)
	}
	resp, body = u.request(http.MethodPost, "/api/lock", "{}", nil)
	u.expect(resp, body, http.StatusOK, "locking")
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusLocked, "after locking")
	if u.opens != 1 {
		t.Fatalf("the client was opened %d times, want once", u.opens)
	}
}

func TestNotLoopbackRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := New(Config{}, ln); err == nil {
		t.Fatal("New without a way to open the client")
	}
	_, err = New(Config{Open: func([]byte) (*control.Server, error) { return nil, errors.New("no") }}, fakeListener{ln})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("New on a non-loopback listener: %v", err)
	}
}

// fakeListener claims to be bound to a public address.
type fakeListener struct{ net.Listener }

func (fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80} }

// TestOfficersInTwoBrowsers: two officers work at once from two browsers,
// each session acting as the officer whose passphrase unlocked it (the
// audit trail says who did what); a browser that has not unlocked gets
// nothing; a session idle for the lock time locks alone while the other
// goes on.
func TestOfficersInTwoBrowsers(t *testing.T) {
	u := newTestUI(t)
	u.login()
	resp, body := u.unlock(passphrase)
	u.expect(resp, body, http.StatusOK, "the first officer unlocking")
	c := u.s.control().Client
	if err := c.AddOfficer(client.DefaultOfficer, "night officer", []byte("the night officer's"), []client.Role{client.RoleReader, client.RoleDrafter, client.RoleAdministrator}); err != nil {
		t.Fatal(err)
	}
	v := &testUI{t: t, s: u.s, clock: u.clock, origin: u.origin}
	v.login()
	resp, body = v.contacts()
	u.expect(resp, body, http.StatusLocked, "a second browser before it unlocks")
	resp, body = v.unlock("the night officer's")
	u.expect(resp, body, http.StatusOK, "the night officer unlocking the second browser")

	bob, _, err := client.Create(client.Config{Dir: t.TempDir(), Passphrase: []byte("b"), VaultParams: vault.Params{Time: 1, MemoryKiB: 8, Threads: 1}, Rand: rand.Reader},
		client.Network{Authorities: []ed25519.PublicKey{make([]byte, 32)}, Threshold: 1, Provider: client.Provider{Name: "p", Address: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	card, _ := bob.Self().MarshalText()
	bob.Close()
	add, _ := json.Marshal(map[string]any{"version": 2, "op": "contact-add", "args": map[string]string{"name": "bob", "card": string(card)}})
	resp, body = u.request(http.MethodPost, "/api/op", string(add), nil)
	u.expect(resp, body, http.StatusOK, "the first officer adding a contact")
	resp, body = v.request(http.MethodPost, "/api/op", `{"version":2,"op":"send","args":{"to":"bob","text":"from the night desk"}}`, nil)
	u.expect(resp, body, http.StatusOK, "the night officer sending")
	entries, err := c.AuditTrail().Entries()
	if err != nil {
		t.Fatal(err)
	}
	who := map[string]string{}
	for _, e := range entries {
		who[string(e.Action)] = e.Officer
	}
	if who["contact-add"] != client.DefaultOfficer || who["send"] != "night officer" {
		t.Fatalf("the trail names %q for the contact and %q for the message", who["contact-add"], who["send"])
	}

	u.clock.Advance(4 * time.Minute)
	resp, body = u.request(http.MethodPost, "/api/activity", "{}", nil)
	u.expect(resp, body, http.StatusOK, "the first officer's activity")
	u.clock.Advance(2 * time.Minute)
	resp, body = v.contacts()
	u.expect(resp, body, http.StatusLocked, "the night officer's browser, idle for 6 minutes")
	resp, body = u.contacts()
	u.expect(resp, body, http.StatusOK, "the first officer's browser, active 2 minutes ago")
}
