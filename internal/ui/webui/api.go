package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// errorBody is the JSON body of a failed API request.
type errorBody struct {
	Error  string `json:"error"`
	Locked bool   `json:"locked,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxBody bounds a request body: a control request with a file.
const maxBody = control.MaxRequestSize

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("the request is too large (at most %d bytes)", maxBody)})
		return nil, false
	}
	return data, true
}

// sessionInfo is what the page learns when it loads.
type sessionInfo struct {
	CSRF   string `json:"csrf"`
	Locked bool   `json:"locked"`
	// Opened: the client's state has been opened once (the unlock
	// screen says "unlock" rather than "open").
	Opened bool `json:"opened"`
	Wiped  bool `json:"wiped"`
	// LockAfter is the idle time in seconds.
	LockAfter int `json:"lock_after"`
	// Officer is the officer this session acts as, once unlocked.
	Officer string `json:"officer,omitempty"`
}

func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	sess := r.Context().Value(sessionKey{}).(*session)
	locked := s.control() == nil
	s.mu.Lock()
	officer := s.officerOf(sess)
	locked = locked || officer == ""
	info := sessionInfo{CSRF: sess.csrf, Locked: locked, Officer: officer, Opened: s.ctl != nil, Wiped: s.wiped, LockAfter: int(s.cfg.LockAfter / time.Second)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// serveUnlock opens the client at the first unlock, and later checks the
// passphrase with it.
func (s *Server) serveUnlock(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Passphrase []byte `json:"passphrase"` // base64, so that it can be wiped
		// Officer, if given, must be the passphrase's officer.
		Officer string `json:"officer"`
	}
	err := json.Unmarshal(data, &req)
	clear(data)
	if err != nil || len(req.Passphrase) == 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "type your passphrase"})
		return
	}
	defer clear(req.Passphrase)
	s.unlocking.Lock()
	defer s.unlocking.Unlock()
	s.mu.Lock()
	ctl, wiped := s.ctl, s.wiped
	s.mu.Unlock()
	if wiped {
		writeJSON(w, http.StatusGone, errorBody{Error: "this backchannel was wiped"})
		return
	}
	officer := ""
	if ctl == nil {
		if ctl, err = s.cfg.Open(req.Passphrase); err == nil {
			officer = ctl.Client.OfficerName()
		}
	} else {
		officer, err = ctl.Client.OfficerOf(req.Passphrase)
	}
	if errors.Is(err, client.ErrWrongPassphrase) || errors.Is(err, vault.ErrPassphrase) {
		s.cfg.Logger.Info("web interface: a wrong passphrase")
		writeJSON(w, http.StatusForbidden, errorBody{Error: "That passphrase does not open this backchannel.", Locked: true})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: fmt.Sprintf("could not open the client: %v", err), Locked: true})
		return
	}
	s.mu.Lock()
	s.ctl = ctl // open, whoever this session turns out to be
	s.mu.Unlock()
	if req.Officer != "" && req.Officer != officer {
		s.cfg.Logger.Info("web interface: a passphrase not of the officer named")
		writeJSON(w, http.StatusForbidden, errorBody{Error: "That passphrase is not that officer's.", Locked: true})
		return
	}
	sess := r.Context().Value(sessionKey{}).(*session)
	s.mu.Lock()
	sess.officer = officer
	s.lastActive = s.cfg.Clock.Now()
	sess.lastActive = s.lastActive
	if !s.locked {
		// Unlocked already, by another session: tell this one's events.
		close(s.lockChange)
		s.lockChange = make(chan struct{})
	}
	s.setLocked(false)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}

// serveLock locks this session; the interface locks when no session is
// left unlocked.
func (s *Server) serveLock(w http.ResponseWriter, r *http.Request) {
	sess := r.Context().Value(sessionKey{}).(*session)
	s.mu.Lock()
	sess.officer = ""
	others := false
	for _, o := range s.sessions {
		others = others || s.officerOf(o) != ""
	}
	if others {
		close(s.lockChange) // this session's events say it
		s.lockChange = make(chan struct{})
	} else {
		s.setLocked(true)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) serveActivity(w http.ResponseWriter, r *http.Request, _ *control.Server) {
	s.touch(r)
	writeJSON(w, http.StatusOK, struct{}{})
}

// serveOp answers a control request: the same strict decoding and the
// same operations as the control socket, for those of control.Commands the
// web interface may ask (UI).
func (s *Server) serveOp(w http.ResponseWriter, r *http.Request, ctl *control.Server) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := control.ParseRequest(data)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	cmd, _ := control.Lookup(req.Op())
	if !cmd.UI {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("the web interface does not ask %q", req.Op())})
		return
	}
	if !cmd.Reads {
		s.touch(r)
	}
	resp := control.Encode(ctl.Handle(r.Context(), req))
	status := http.StatusOK
	if resp.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, resp)
}

// serveQR draws a contact's safety number as a QR code, for the other
// side to scan and compare.
func (s *Server) serveQR(w http.ResponseWriter, r *http.Request, ctl *control.Server) {
	name := r.URL.Query().Get("name")
	resp, err := ctl.Handle(r.Context(), &control.ContactListRequest{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, ct := range resp.(control.ContactsResponse).Contacts {
		if ct.Name != name {
			continue
		}
		code, err := identity.SafetyNumberQR(ct.SafetyNumber)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		png, err := code.PNG(256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
		return
	}
	http.Error(w, fmt.Sprintf("no contact is called %q", name), http.StatusNotFound)
}

// download sends data as a file to save, never to display.
func download(w http.ResponseWriter, name, contentType string, data []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Write(data)
}

// The downloads (GET) ask control operations as the page's requests do:
// each endpoint one operation (see downloadOps).

func (s *Server) serveCard(w http.ResponseWriter, r *http.Request, ctl *control.Server) {
	resp, err := ctl.Handle(r.Context(), &control.CardRequest{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	download(w, "backchannel-card.txt", "text/plain; charset=utf-8", []byte(resp.(control.CardResponse).Card))
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, ctl *control.Server) {
	resp, err := ctl.Handle(r.Context(), &control.ReadRequest{ID: r.URL.Query().Get("id")})
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	content := resp.(control.ReadResponse)
	if content.File == nil {
		download(w, "message.txt", "application/octet-stream", []byte(content.Text))
		return
	}
	download(w, content.File.Name, "application/octet-stream", content.File.Data)
}

func (s *Server) serveProof(w http.ResponseWriter, r *http.Request, ctl *control.Server) {
	id := r.URL.Query().Get("id")
	resp, err := ctl.Handle(r.Context(), &control.ReceiptRequest{ID: id})
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	data, err := json.MarshalIndent(resp.(control.ProofResponse).Proof, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	download(w, "receipt-"+id+".json", "application/json", data)
}

// serveEvents streams server-sent events: "change" when the client has
// something new to show, "lock" when the interface locks or unlocks, and
// "tick" every few seconds for the network status.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(event string, data any) bool {
		b, _ := json.Marshal(data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	sess := r.Context().Value(sessionKey{}).(*session)
	for {
		ctl := s.control()
		s.mu.Lock()
		change, wiped := s.lockChange, s.wiped
		if s.officerOf(sess) == "" {
			ctl = nil // this session has not unlocked, or locked alone
		}
		s.mu.Unlock()
		if !send("lock", map[string]bool{"locked": ctl == nil, "wiped": wiped}) {
			return
		}
		var changed <-chan struct{}
		if ctl != nil {
			changed = ctl.Client.Changed()
		}
	wait:
		for {
			select {
			case <-changed:
				if !send("change", struct{}{}) {
					return
				}
				changed = ctl.Client.Changed()
			case <-tick.C:
				s.mu.Lock()
				alone := s.officerOf(sess) == ""
				s.mu.Unlock()
				if (s.control() == nil || alone) && ctl != nil {
					break wait // the idle time ran out, for all or for this session
				}
				if !send("tick", struct{}{}) {
					return
				}
			case <-change:
				break wait
			case <-r.Context().Done():
				return
			}
		}
	}
}

// downloadOps maps each download endpoint to the one operation it asks.
var downloadOps = map[string]string{
	"/api/card":  "card",
	"/api/file":  "read",
	"/api/proof": "receipt",
	"/api/qr":    "contact-list",
}
