package authority

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Peer is another authority: its key and the base URL of its HTTP API.
type Peer struct {
	Key ed25519.PublicKey
	URL string
}

// Config configures an authority.
type Config struct {
	Key       ed25519.PrivateKey
	Peers     []Peer
	Threshold int
	Admission Admission
	// Parameters are the network parameters every document carries; all
	// authorities must be configured alike (one that is not signs a
	// document the others do not).
	Parameters directory.Parameters
	// FormatChange, if set, moves the network to another packet format at
	// an epoch boundary: the documents of epochs from FormatChange.Epoch on
	// use its scheme instead of Parameters.Geometry's. Nodes offer keys of
	// every format they know, so they need not be told.
	FormatChange *FormatChange
	// Genesis is the start of epoch 0 and EpochLength the length of every
	// epoch, alike at every authority.
	Genesis     time.Time
	EpochLength time.Duration
	// DocumentDir, if set, keeps every published document (epoch-N.doc),
	// read back at start: a restarted authority still serves the current
	// and next documents, and one can be given the genesis document there.
	DocumentDir string
	Clock       clock.Clock
	HTTP        *http.Client
	Logger      *slog.Logger
}

// Server is one directory authority. For each epoch E+1 it runs three
// phases during epoch E, at fixed points of the epoch so that every
// authority does the same at the same time:
//
//  1. until half the epoch, it takes the descriptors nodes upload for E+1;
//     then it freezes its set and publishes it as a signed bundle;
//  2. at five eighths, it fetches its peers' frozen bundles, keeps the
//     descriptors at least Threshold authorities hold (Tally), builds the
//     document (Build) and signs it: its vote;
//  3. from three quarters, it fetches its peers' votes and combines the
//     signatures over the same document; with Threshold of them, the
//     document is published.
//
// An authority that is down, or that disagrees, simply adds no signature.
type Server struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	descriptors map[uint64]map[string][]byte // epoch → identity key → signed descriptor
	frozen      map[uint64][]byte            // epoch → own signed bundle
	votes       map[uint64][]byte            // epoch → own vote: an encoded directory.Signed
	documents   map[uint64][]byte            // epoch → published document (threshold reached)
	// seen is when each node (by identity key) last uploaded a descriptor
	// this authority takes: a node not heard from within liveness of a
	// freeze is left out of the frozen set.
	seen map[string]time.Time

	refusals *rate.Limiter // of refused uploads' log lines
	unlogged atomic.Int64  // refused uploads not logged since the last logged

	metrics *metrics
}

// NewServer makes an authority.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Threshold < 1 || cfg.Threshold > len(cfg.Peers)+1 {
		return nil, fmt.Errorf("authority: a threshold of %d with %d authorities", cfg.Threshold, len(cfg.Peers)+1)
	}
	if cfg.EpochLength < 8*time.Second {
		return nil, fmt.Errorf("authority: epochs of %v, at least 8s", cfg.EpochLength)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, descriptors: map[uint64]map[string][]byte{}, frozen: map[uint64][]byte{},
		votes: map[uint64][]byte{}, documents: map[uint64][]byte{}, seen: map[string]time.Time{}, refusals: rate.NewLimiter(1, 10)}
	s.metrics = newMetrics(s)
	if err := s.loadDocuments(); err != nil {
		return nil, err
	}
	return s, nil
}

// documentFile is where the document of epoch e is kept.
func (s *Server) documentFile(e uint64) string {
	return filepath.Join(s.cfg.DocumentDir, fmt.Sprintf("epoch-%d.doc", e))
}

// loadDocuments reads the kept documents of the current epoch and the
// next. A file that does not verify (threshold signatures of these
// authorities, for the epoch its name says) is an error: it was not
// written by this authority.
func (s *Server) loadDocuments() error {
	if s.cfg.DocumentDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.cfg.DocumentDir, 0o700); err != nil {
		return fmt.Errorf("authority: documents: %w", err)
	}
	now := s.Epoch(s.cfg.Clock.Now())
	for _, e := range []uint64{now, now + 1} {
		raw, err := os.ReadFile(s.documentFile(e))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("authority: %w", err)
		}
		trust := directory.Trust{Authorities: s.authorities(), Threshold: s.cfg.Threshold}
		doc, err := directory.VerifySignatures(raw, trust)
		if err == nil && doc.Epoch != e {
			err = fmt.Errorf("it holds the document of epoch %d", doc.Epoch)
		}
		if err != nil {
			return fmt.Errorf("authority: %s: %w", s.documentFile(e), err)
		}
		s.documents[e] = raw
		s.log.Info("serving a kept document", "epoch", e)
	}
	return nil
}

// keepDocument writes a published document to DocumentDir and removes
// those of epochs long past.
func (s *Server) keepDocument(e uint64, raw []byte) error {
	if s.cfg.DocumentDir == "" {
		return nil
	}
	// Replaced atomically: a crash leaves the old file or the new one.
	if err := renameio.WriteFile(s.documentFile(e), raw, 0o600); err != nil {
		return err
	}
	if e >= 4 {
		os.Remove(s.documentFile(e - 4))
	}
	return nil
}

// Epoch returns the epoch at t.
func (s *Server) Epoch(t time.Time) uint64 {
	if t.Before(s.cfg.Genesis) {
		return 0
	}
	return uint64(t.Sub(s.cfg.Genesis) / s.cfg.EpochLength)
}

// Start returns when an epoch starts.
func (s *Server) Start(epoch uint64) time.Time {
	return s.cfg.Genesis.Add(time.Duration(epoch) * s.cfg.EpochLength)
}

// phase returns the point of epoch e−1 at which a phase for epoch e begins.
func (s *Server) phase(e uint64, eighths int) time.Time {
	return s.Start(e).Add(-s.cfg.EpochLength + time.Duration(eighths)*s.cfg.EpochLength/8)
}

// Upload takes a node's signed descriptor for the next epoch (until its
// descriptors are frozen, half-way through this one) or the one after.
func (s *Server) Upload(raw []byte) error {
	err := s.upload(raw)
	result := "taken"
	if err != nil {
		result = "refused"
	}
	s.metrics.uploads.WithLabelValues(result).Inc()
	return err
}

func (s *Server) upload(raw []byte) error {
	d, err := directory.ParseDescriptor(raw)
	if err != nil {
		return err
	}
	if !s.cfg.Admission.Admits(d.IdentityKey) {
		return fmt.Errorf("authority: node %q (%x) is not on the admission list", d.Name, d.IdentityKey)
	}
	now := s.cfg.Clock.Now()
	next := s.Epoch(now) + 1
	if (d.Epoch != next || !now.Before(s.phase(next, 4))) && d.Epoch != next+1 {
		return fmt.Errorf("authority: a descriptor for epoch %d; this authority takes them for epoch %d until %s, and for epoch %d",
			d.Epoch, next, s.phase(next, 4).Format(time.RFC3339), next+1)
	}
	if format := s.cfg.parameters(d.Epoch).Geometry.Scheme; !offers(d, format) {
		return fmt.Errorf("authority: node %q offers no %v Sphinx key for epoch %d, the network's packet format then: is it of an earlier release?",
			d.Name, format, d.Epoch)
	}
	s.mu.Lock()
	s.seen[string(d.IdentityKey)] = now
	if s.frozen[d.Epoch] != nil {
		s.mu.Unlock()
		return fmt.Errorf("authority: the descriptors for epoch %d are frozen", d.Epoch)
	}
	if s.descriptors[d.Epoch] == nil {
		s.descriptors[d.Epoch] = map[string][]byte{}
	}
	first := s.descriptors[d.Epoch][string(d.IdentityKey)] == nil
	s.descriptors[d.Epoch][string(d.IdentityKey)] = raw
	s.mu.Unlock()
	if first {
		// Nodes upload every sixteenth of an epoch: the first of each
		// epoch is news, the repeats are not.
		s.log.Info("descriptor taken", "epoch", d.Epoch, "node", d.Name, "role", d.Role, "address", d.Address)
	}
	return nil
}

// Step does what is due at now: freezing, voting, combining for the next
// epoch. Run calls it; tests call it with their own clock.
func (s *Server) Step(ctx context.Context, now time.Time) {
	e := s.Epoch(now) + 1
	if !now.Before(s.phase(e, 4)) {
		s.freeze(e)
	}
	if !now.Before(s.phase(e, 5)) {
		if err := s.vote(ctx, e); err != nil {
			s.log.Warn("no vote yet", "epoch", e, "err", err)
		}
	}
	if !now.Before(s.phase(e, 6)) {
		if err := s.combine(ctx, e); err != nil {
			s.log.Warn("no document yet", "epoch", e, "err", err)
		}
	}
	s.forget(e)
}

// liveness is how recently a node must have uploaded a descriptor for it
// to be frozen into the next document: three of its upload intervals
// (nodes upload every sixteenth of an epoch), so that one or two lost
// uploads do not drop it, and at least minLiveness, for the short epochs of
// test networks on busy machines. A node that died is left out of every
// document frozen more than that after its death (the next one, or the
// one after), where the descriptors it uploaded ahead would have kept it
// listed up to three epochs.
func (s *Server) liveness() time.Duration { return max(s.cfg.EpochLength*3/16, minLiveness) }

// minLiveness is liveness's least value.
const minLiveness = 10 * time.Second

// freeze fixes this authority's descriptors for epoch e: those of nodes
// heard from within liveness.
func (s *Server) freeze(e uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen[e] != nil {
		return
	}
	now := s.cfg.Clock.Now()
	var set [][]byte
	for key, raw := range s.descriptors[e] {
		if last := s.seen[key]; now.Sub(last) > s.liveness() {
			s.log.Warn("a node is left out: no descriptor from it lately", "epoch", e, "key", fmt.Sprintf("%x", key), "last", last.UTC().Format(time.RFC3339))
			s.metrics.leftOut.WithLabelValues(leftOutSilent).Inc()
			continue
		}
		set = append(set, raw)
	}
	sort.Slice(set, func(i, j int) bool { return bytes.Compare(set[i], set[j]) < 0 })
	b, err := SignBundle(e, set, s.cfg.Key)
	if err != nil {
		s.log.Error("freezing the descriptors", "epoch", e, "err", err)
		return
	}
	s.frozen[e] = b
	s.metrics.frozen.Set(float64(len(set)))
	s.log.Info("froze the descriptors", "epoch", e, "descriptors", len(set), "left_out", len(s.descriptors[e])-len(set))
}

// vote tallies the frozen bundles it can get and signs the document.
func (s *Server) vote(ctx context.Context, e uint64) error {
	s.mu.Lock()
	own, voted := s.frozen[e], s.votes[e] != nil
	s.mu.Unlock()
	if voted || own == nil {
		return nil
	}
	mine, err := ParseBundle(own, e, s.cfg.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	held := [][][]byte{mine}
	for _, p := range s.cfg.Peers {
		raw, err := s.get(ctx, p, fmt.Sprintf("/v1/descriptors/%d", e))
		if err != nil {
			s.log.Warn("a peer's descriptors are missing", "peer", p.URL, "err", err)
			s.metrics.peerErrors.WithLabelValues(p.URL).Inc()
			continue
		}
		set, err := ParseBundle(raw, e, p.Key)
		if err != nil {
			s.log.Warn("a peer's descriptors do not verify", "peer", p.URL, "err", err)
			s.metrics.peerErrors.WithLabelValues(p.URL).Inc()
			continue
		}
		held = append(held, set)
	}
	params := s.cfg.parameters(e)
	fitting, unfit := OfFormat(Tally(e, held, s.cfg.Threshold, s.cfg.Admission), params.Geometry.Scheme)
	kept, dropped := Screen(fitting, s.previous(e))
	for _, d := range append(unfit, dropped...) {
		s.log.Warn("a descriptor is left out of the document", "epoch", e, "node", d.Name, "key", fmt.Sprintf("%x", []byte(d.Key)), "reason", d.Reason)
		s.metrics.leftOut.WithLabelValues(leftOutScreened).Inc()
	}
	doc, err := Build(e, s.Start(e), s.cfg.EpochLength, params, kept)
	if err != nil {
		return err
	}
	encoded, err := doc.MarshalBinary()
	if err != nil {
		return err
	}
	signed := directory.Signed{Document: encoded, Signatures: []directory.Signature{directory.Sign(encoded, s.cfg.Key)}}
	vote, err := signed.MarshalBinary()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.votes[e] = vote
	s.mu.Unlock()
	s.metrics.voted.Set(float64(e))
	s.log.Info("voted", "epoch", e, "nodes", len(doc.Nodes), "bundles", len(held))
	return nil
}

// previous is the published document of the epoch before e, or nil if
// this authority does not hold it (its signatures were checked when it was
// published or read back).
func (s *Server) previous(e uint64) *directory.Document {
	if e == 0 {
		return nil
	}
	s.mu.Lock()
	data := s.documents[e-1]
	s.mu.Unlock()
	if data == nil {
		return nil
	}
	doc, err := directory.VerifySignatures(data, directory.Trust{Authorities: s.authorities(), Threshold: s.cfg.Threshold})
	if err != nil {
		s.log.Error("the previous document does not verify", "epoch", e-1, "err", err)
		return nil
	}
	return doc
}

// combine gathers the peers' votes for the document this authority voted
// for and publishes it with Threshold signatures.
func (s *Server) combine(ctx context.Context, e uint64) error {
	s.mu.Lock()
	own, done := s.votes[e], s.documents[e] != nil
	s.mu.Unlock()
	if done || own == nil {
		return nil
	}
	var mine directory.Signed
	if err := mine.UnmarshalBinary(own); err != nil {
		return err
	}
	all := []directory.Signed{mine}
	for _, p := range s.cfg.Peers {
		raw, err := s.get(ctx, p, fmt.Sprintf("/v1/vote/%d", e))
		if err != nil {
			s.log.Debug("a peer's vote is missing", "peer", p.URL, "epoch", e, "err", err)
			s.metrics.peerErrors.WithLabelValues(p.URL).Inc()
			continue
		}
		var v directory.Signed
		if v.UnmarshalBinary(raw) == nil {
			all = append(all, v)
		}
	}
	combined := Combine(mine.Document, all)
	data, err := combined.MarshalBinary()
	if err != nil {
		return err
	}
	trust := directory.Trust{Authorities: s.authorities(), Threshold: s.cfg.Threshold, ClockSkew: s.cfg.EpochLength}
	if _, err := directory.Verify(data, trust, s.Start(e)); err != nil {
		return fmt.Errorf("%d of the %d signatures needed: %w", len(combined.Signatures), s.cfg.Threshold, err)
	}
	if err := s.keepDocument(e, data); err != nil {
		s.log.Error("keeping the published document", "epoch", e, "err", err)
	}
	s.mu.Lock()
	s.documents[e] = data
	s.mu.Unlock()
	s.metrics.published.Set(float64(e))
	s.metrics.signatures.Set(float64(len(combined.Signatures)))
	s.log.Info("published", "epoch", e, "signatures", len(combined.Signatures))
	return nil
}

func (s *Server) authorities() []ed25519.PublicKey {
	out := []ed25519.PublicKey{s.cfg.Key.Public().(ed25519.PublicKey)}
	for _, p := range s.cfg.Peers {
		out = append(out, p.Key)
	}
	return out
}

// forget drops what belongs to epochs long past.
func (s *Server) forget(next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[uint64][]byte{s.frozen, s.votes, s.documents} {
		for e := range m {
			if e+4 < next {
				delete(m, e)
			}
		}
	}
	for e := range s.descriptors {
		if e+4 < next {
			delete(s.descriptors, e)
		}
	}
}

// get fetches a path from a peer.
func (s *Server) get(ctx context.Context, p Peer, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// Document returns the published document of an epoch.
func (s *Server) Document(e uint64) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.documents[e]
	return d, ok
}

// Run does each step as time passes, every sixteenth of an epoch, until
// ctx is done.
func (s *Server) Run(ctx context.Context) error {
	for {
		s.Step(ctx, s.cfg.Clock.Now())
		t := s.cfg.Clock.NewTimerAt(s.cfg.Clock.Now().Add(s.cfg.EpochLength / 16))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}
