package authority

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

const epochLength = time.Minute

var genesis = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// authorities starts n authorities with threshold k on loopback HTTP
// servers, sharing a fake clock; tweak may change each one's config.
func authorities(t *testing.T, n, k int, admission Admission, clk *clock.Fake, tweak func(i int, c *Config)) ([]*Server, []ed25519.PublicKey, []func()) {
	t.Helper()
	var keys []ed25519.PrivateKey
	var pubs []ed25519.PublicKey
	var lns []net.Listener
	for i := range n {
		seed := make([]byte, 32)
		testrand.New(byte(i), 42).Read(seed)
		keys = append(keys, ed25519.NewKeyFromSeed(seed))
		pubs = append(pubs, keys[i].Public().(ed25519.PublicKey))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	var servers []*Server
	var stops []func()
	for i := range n {
		cfg := Config{Key: keys[i], Threshold: k, Admission: admission, Parameters: params, Genesis: genesis, EpochLength: epochLength, Clock: clk}
		for j := range n {
			if j != i {
				cfg.Peers = append(cfg.Peers, Peer{Key: pubs[j], URL: "http://" + lns[j].Addr().String()})
			}
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: time.Second}
		go srv.Serve(lns[i])
		stop := func() { srv.Close() }
		t.Cleanup(stop)
		servers = append(servers, s)
		stops = append(stops, stop)
	}
	return servers, pubs, stops
}

// upload sends each node's descriptor for epoch e to every running
// authority, just before they freeze the descriptors of e (as nodes
// upload every sixteenth of an epoch, and only nodes heard from lately are
// frozen in).
func upload(t *testing.T, servers []*Server, ns []node, e uint64) {
	t.Helper()
	toFreeze(servers, e)
	for i := range ns {
		ns[i].d.Epoch = e
	}
	for _, raw := range signed(t, ns) {
		for _, s := range servers {
			s.Upload(raw)
		}
	}
}

// toFreeze moves the authorities' clock to a second before they freeze
// the descriptors of epoch e, if it is earlier.
func toFreeze(servers []*Server, e uint64) {
	clk := servers[0].cfg.Clock.(*clock.Fake)
	if at := servers[0].phase(e, 4).Add(-time.Second); clk.Now().Before(at) {
		clk.Advance(at.Sub(clk.Now()))
	}
}

// stepAll moves the clock through the phases of the next epoch and steps
// every authority at each.
func stepAll(servers []*Server, clk *clock.Fake, skip map[int]bool) {
	for _, eighths := range []int{4, 5, 6, 7} {
		e := servers[0].Epoch(clk.Now()) + 1
		at := servers[0].phase(e, eighths)
		clk.Advance(at.Sub(clk.Now()))
		for i, s := range servers {
			if !skip[i] {
				s.Step(context.Background(), clk.Now())
			}
		}
	}
}

func verify(t *testing.T, data []byte, pubs []ed25519.PublicKey, k int, at time.Time) (*directory.Document, error) {
	t.Helper()
	return directory.Verify(data, directory.Trust{Authorities: pubs, Threshold: k, ClockSkew: time.Minute}, at)
}

func TestOneOfOne(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 2, 3)
	servers, pubs, _ := authorities(t, 1, 1, admitAll(ns), clk, nil)
	upload(t, servers, ns, 2)
	stepAll(servers, clk, nil)
	data, ok := servers[0].Document(2)
	if !ok {
		t.Fatal("no document for epoch 2")
	}
	doc, err := verify(t, data, pubs, 1, servers[0].Start(2))
	if err != nil || len(doc.Nodes) != 5 {
		t.Fatalf("%v, %v", doc, err)
	}
}

// TestTwoOfThree: the normal case, one authority down, one authority that
// disagrees, a node nobody admitted, and a node only one authority admits.
func TestTwoOfThree(t *testing.T) {
	ns := nodes(t, 2, 4)
	admitted := admitAll(ns[:5]) // ns[5] (a mix) is on no list
	for _, tc := range []struct {
		name    string
		down    map[int]bool
		tweak   func(int, *Config)
		signers int
		nodes   int
		publish []int
		nobody  []int // authorities that must not publish
	}{
		{name: "all agree", signers: 3, nodes: 5, publish: []int{0, 1, 2}},
		{name: "one down", down: map[int]bool{2: true}, signers: 2, nodes: 5, publish: []int{0, 1}},
		{name: "one disagrees", tweak: func(i int, c *Config) {
			if i == 2 {
				c.Parameters.MeanDelay = time.Second
			}
		}, signers: 2, nodes: 5, publish: []int{0, 1}, nobody: []int{2}},
		{name: "only one admits a node", tweak: func(i int, c *Config) {
			if i == 0 {
				a := Admission{}
				for k, v := range admitted {
					a[k] = v
				}
				for k := range admitAll(ns[5:]) {
					a[k] = true
				}
				c.Admission = a
			}
		}, signers: 3, nodes: 5, publish: []int{0, 1, 2}}, // one authority cannot add a node alone
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(genesis.Add(epochLength + time.Second))
			servers, pubs, stops := authorities(t, 3, 2, admitted, clk, tc.tweak)
			for i := range tc.down {
				stops[i]()
			}
			var up []*Server
			for i, s := range servers {
				if !tc.down[i] {
					up = append(up, s)
				}
			}
			upload(t, up, ns, 2)
			stepAll(servers, clk, tc.down)
			var first []byte
			for _, i := range tc.publish {
				data, ok := servers[i].Document(2)
				if !ok {
					t.Fatalf("authority %d published nothing", i)
				}
				doc, err := verify(t, data, pubs, 2, servers[i].Start(2))
				if err != nil {
					t.Fatalf("authority %d: %v", i, err)
				}
				var s directory.Signed
				s.UnmarshalBinary(data)
				if len(s.Signatures) != tc.signers || len(doc.Nodes) != tc.nodes {
					t.Fatalf("authority %d: %d signatures, %d nodes", i, len(s.Signatures), len(doc.Nodes))
				}
				if doc.Node(ns[5].d.IdentityKey) != nil {
					t.Fatal("a node on no admission list is in the document")
				}
				if first == nil {
					first = s.Document
				} else if !bytes.Equal(first, s.Document) {
					t.Fatal("authorities published different documents")
				}
			}
			for _, i := range tc.nobody {
				if _, ok := servers[i].Document(2); ok {
					t.Fatalf("authority %d published a document the others did not sign", i)
				}
			}
		})
	}
}

func TestUploadRefusals(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 1, 1)
	servers, _, _ := authorities(t, 1, 1, admitAll(ns[:1]), clk, nil)
	s := servers[0]
	ns[0].d.Epoch, ns[1].d.Epoch = 2, 2
	raw := signed(t, ns)
	if err := s.Upload(raw[1]); err == nil {
		t.Fatal("took a node that is not admitted")
	}
	ns[0].d.Epoch = 5
	if err := s.Upload(signed(t, ns[:1])[0]); err == nil {
		t.Fatal("took a descriptor for a far epoch")
	}
	ns[0].d.Epoch = 3
	if err := s.Upload(signed(t, ns[:1])[0]); err != nil {
		t.Fatalf("refused a descriptor for the epoch after next: %v", err)
	}
	clk.Advance(epochLength / 2)
	if err := s.Upload(raw[0]); err == nil {
		t.Fatal("took a descriptor after the freeze")
	}
	if err := s.Upload([]byte("junk")); !errors.Is(err, directory.ErrDescriptor) {
		t.Fatalf("junk: %v", err)
	}
}

// TestFormatChange: an authority configured to move the network from the
// X25519 packet format to X-Wing at epoch 3 takes a node of an earlier
// release (X25519 keys only) for epoch 2 and refuses it, saying why, for
// epoch 3; the document of epoch 2 names X25519 and carries the nodes'
// X25519 keys, that of epoch 3 names X-Wing and carries their X-Wing keys.
func TestFormatChange(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 2, 4)
	old := ns[5]
	old.d.SphinxKeys = testSphinxKeys(t, 5, sphinx.X25519)
	servers, pubs, _ := authorities(t, 1, 1, admitAll(ns), clk, func(_ int, c *Config) {
		c.Parameters.Geometry.Scheme = sphinx.X25519
		c.FormatChange = &FormatChange{Epoch: 3, Scheme: sphinx.XWing}
	})
	s := servers[0]
	old.d.Epoch = 3
	if err := s.Upload(signed(t, []node{old})[0]); err == nil || !strings.Contains(err.Error(), "offers no xwing Sphinx key for epoch 3") {
		t.Fatalf("an X25519-only descriptor for the X-Wing epoch: %v", err)
	}
	for _, step := range []struct {
		epoch  uint64
		format sphinx.Scheme
		nodes  int
	}{{2, sphinx.X25519, 6}, {3, sphinx.XWing, 5}} {
		withOld := append(append([]node(nil), ns[:5]...), old)
		upload(t, servers, withOld, step.epoch)
		stepAll(servers, clk, nil)
		data, ok := s.Document(step.epoch)
		if !ok {
			t.Fatalf("no document for epoch %d", step.epoch)
		}
		doc, err := verify(t, data, pubs, 1, s.Start(step.epoch))
		if err != nil || len(doc.Nodes) != step.nodes || doc.Parameters.Geometry.Scheme != step.format {
			t.Fatalf("epoch %d: %v nodes, format %v, %v; want %d nodes, %v", step.epoch, len(doc.Nodes), doc.Parameters.Geometry.Scheme, err, step.nodes, step.format)
		}
		for _, n := range ns[:5] {
			want, _ := n.d.Keys(step.format)
			if got := doc.Node(n.d.IdentityKey); got == nil || !got.SphinxKey.Equal(want.Current) {
				t.Fatalf("epoch %d: node %q is missing or has another key than its %v one", step.epoch, n.d.Name, step.format)
			}
		}
	}
}

// TestDocumentsKept: a published document is kept in DocumentDir and
// served again by the authority after a restart; a file there that these
// authorities did not sign stops the authority from starting.
func TestDocumentsKept(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 2, 3)
	dir := t.TempDir()
	keep := func(i int, c *Config) { c.DocumentDir = dir }
	servers, _, stops := authorities(t, 1, 1, admitAll(ns), clk, keep)
	upload(t, servers, ns, 2)
	stepAll(servers, clk, nil)
	published, ok := servers[0].Document(2)
	if !ok {
		t.Fatal("no document for epoch 2")
	}
	stops[0]()
	clk.Advance(servers[0].Start(2).Add(time.Second).Sub(clk.Now())) // in epoch 2: it is the current one
	again, _, _ := authorities(t, 1, 1, admitAll(ns), clk, keep)
	if kept, ok := again[0].Document(2); !ok || !bytes.Equal(kept, published) {
		t.Fatal("the restarted authority does not serve the document it published")
	}

	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "epoch-2.doc"), published, 0o600)
	cfg := Config{Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)), Threshold: 1, Admission: admitAll(ns), Parameters: params,
		Genesis: genesis, EpochLength: epochLength, Clock: clk, DocumentDir: foreign}
	if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), "epoch-2.doc") {
		t.Fatalf("started with another authority's document: %v", err)
	}
}

// TestRefusedUploadsLogged: a refused upload is logged with its reason, at
// most ten at once and one a second after that, the next logged line
// saying how many went unlogged.
func TestRefusedUploadsLogged(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 1, 0)
	var logs bytes.Buffer
	servers, _, _ := authorities(t, 1, 1, Admission{}, clk, func(i int, c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	})
	ns[0].d.Epoch = 2
	raw := signed(t, ns)[0]
	h := servers[0].Handler()
	for range 50 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/descriptor", bytes.NewReader(raw)))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("an upload from a node on no admission list: %d", w.Code)
		}
	}
	lines := strings.Count(logs.String(), "a descriptor upload was refused")
	if lines < 1 || lines > 11 {
		t.Fatalf("%d log lines for 50 refused uploads, want 1 to 11:\n%s", lines, logs.String())
	}
	if !strings.Contains(logs.String(), "not on the admission list") {
		t.Fatalf("the log does not say why:\n%s", logs.String())
	}
}

// syncWriter serializes writes to a buffer the test reads afterwards.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestSilentNodeLeftOut: nodes upload their descriptors two epochs ahead;
// one then goes silent (it died). The next freeze leaves it out, though
// its descriptor for that epoch was uploaded, and the node is listed again
// once it uploads again before a freeze.
func TestSilentNodeLeftOut(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 2, 4)
	servers, pubs, _ := authorities(t, 1, 1, admitAll(ns), clk, nil)
	silent := ns[5]
	for _, e := range []uint64{2, 3} { // uploaded ahead, at the start of epoch 1
		for i := range ns {
			ns[i].d.Epoch = e
		}
		for _, raw := range signed(t, ns) {
			if err := servers[0].Upload(raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	listed := func(e uint64) bool {
		t.Helper()
		data, ok := servers[0].Document(e)
		if !ok {
			t.Fatalf("no document for epoch %d", e)
		}
		doc, err := verify(t, data, pubs, 1, servers[0].Start(e))
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.Nodes) < len(ns)-1 {
			t.Fatalf("epoch %d lists %d nodes: the live ones were left out too", e, len(doc.Nodes))
		}
		return doc.Node(silent.d.IdentityKey) != nil
	}
	upload(t, servers, ns[:5], 2) // the others go on uploading
	stepAll(servers, clk, nil)
	if listed(2) {
		t.Fatal("a node silent for half an epoch is in the next document")
	}
	upload(t, servers, ns, 3) // it is back before the next freeze
	stepAll(servers, clk, nil)
	if !listed(3) {
		t.Fatal("a node that uploads again is not listed at the next freeze")
	}
}

// TestAuthorityTellsItsOperator: an authority logs each step — the first
// descriptor of each node for an epoch (not its repeats), the freeze, its
// vote, the publication — counts them in its metrics, and is healthy once
// it holds the current epoch's document.
func TestAuthorityTellsItsOperator(t *testing.T) {
	clk := clock.NewFake(genesis.Add(epochLength + time.Second))
	ns := nodes(t, 2, 4)
	var logs bytes.Buffer
	servers, _, _ := authorities(t, 1, 1, admitAll(ns[:5]), clk, func(i int, c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	})
	s := servers[0]
	if err := s.Health(); err == nil || !strings.Contains(err.Error(), "epoch 1") {
		t.Fatalf("healthy with no document: %v", err)
	}
	upload(t, servers, ns, 2)
	for _, raw := range signed(t, ns) { // the repeats of the next sixteenth
		s.Upload(raw)
	}
	stepAll(servers, clk, nil)
	for want, count := range map[string]int{"descriptor taken": 5, "froze the descriptors": 1, "voted": 1, "published": 1} {
		if got := strings.Count(logs.String(), "msg=\""+want) + strings.Count(logs.String(), "msg="+want+" "); got != count {
			t.Errorf("%d log lines %q, want %d:\n%s", got, want, count, logs.String())
		}
	}
	clk.Advance(s.Start(2).Sub(clk.Now()))
	if err := s.Health(); err != nil {
		t.Fatalf("unhealthy holding the current document: %v", err)
	}
	for metric, want := range map[string]float64{
		`backchannel_authority_uploads_total{result="taken"}`:   10,
		`backchannel_authority_uploads_total{result="refused"}`: 2, // the node on no admission list, twice
		`backchannel_authority_frozen_descriptors`:              5,
		`backchannel_authority_voted_epoch`:                     2,
		`backchannel_authority_published_epoch`:                 2,
		`backchannel_authority_published_signatures`:            1,
		`backchannel_authority_epoch`:                           2,
		`backchannel_authority_healthy`:                         1,
	} {
		if got := metricValue(t, s, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

// metricValue reads one sample of the authority's registry, named as the
// text exposition names it.
func metricValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	families, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			full := f.GetName()
			if len(m.GetLabel()) > 0 {
				full += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						full += ","
					}
					full += l.GetName() + `="` + l.GetValue() + `"`
				}
				full += "}"
			}
			if full != name {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
