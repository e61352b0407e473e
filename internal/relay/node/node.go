// Package node runs a backchannel relay: a mix node in one of the mix layers,
// or a provider, which is also the first and last hop of its users' packets
// and keeps their mailboxes. Both are the same server with a role taken from
// the network document.
//
// Packets arrive over links (package wire) as numbered frames. Worker
// goroutines unwrap them (package sphinx) and check their replay tags
// (package replay); a committer makes the tags durable once per batch, then
// acknowledges the frames to the previous hop and hands each packet to the
// delay queue (package delay), or, at a provider, to the recipient's mailbox
// (package mailbox), stored before it is acknowledged. When a packet's delay
// is over it goes to the outgoing queue of its next hop, which must be in the
// next layer; a peer's queue is bounded and its overflow counted. A peer link
// retransmits whatever the next hop has not acknowledged when it reconnects.
//
// A packet acknowledged by a mix that then crashes is lost; end-to-end
// retransmission (the client's job) recovers it. A provider acknowledges a
// packet for one of its mailboxes only once it is on disk.
package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/base/listen"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/delay"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// Config is what a node is built from. The command line turns a config file
// and key files into one.
type Config struct {
	Identity ed25519.PrivateKey
	LinkKey  wire.Keypair
	// SphinxKey is the node's Sphinx key for Document's epoch, which the
	// node owns (and wipes).
	SphinxKey *sphinx.PrivateKey
	Document  *directory.Document
	// SignedDocument is the document as the authorities signed it, which a
	// provider hands to its clients.
	SignedDocument []byte
	// Listen is the address to listen on; empty means the document's.
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	DataDir  string
	// Accounts is the provider's account table; nil for a mix.
	Accounts *Accounts
	Mailbox  mailbox.Options
	// PeerQueue is the length of each next hop's outgoing queue.
	PeerQueue int
	// DelayQueue is the most packets held for their delays at once.
	DelayQueue int
	// ExpireEvery is how often a provider removes expired mailbox packets
	// (default one minute).
	ExpireEvery time.Duration
	// DrainTimeout bounds a graceful shutdown: how long the node goes on
	// forwarding the packets it holds (at their due times: forwarding them
	// early would undo their mixing) and waiting for next hops to
	// acknowledge them. Zero means 10 seconds.
	DrainTimeout time.Duration
	// LinkWriteTimeout is how long a write to a link, inbound or to a
	// next hop, may block before the link is closed (a peer that does not
	// read); zero means 30 seconds.
	LinkWriteTimeout time.Duration
	// LinksPerSource bounds the connections one source address (an IPv4
	// address, an IPv6 /64) may hold open to the node, in their handshake
	// or up: beyond it a new one is closed at once, so that a flood from
	// one address cannot take the handshake slots from real peers. Zero
	// means DefaultLinksPerSource.
	LinksPerSource int
	// LinksPerUser bounds the links one user may hold to its provider at
	// once; a new one closes the oldest. Zero means DefaultLinksPerUser.
	LinksPerUser int
	// ClassicalLinksUntil is the epoch from which the node neither takes
	// nor opens classical links (link version 1, X25519 alone), which the
	// previous release speaks; before it, a peer that offers only those is
	// served, and a next hop that answers only those is dialled so. Zero:
	// post-quantum links only, from the start.
	ClassicalLinksUntil uint64
	// ClientIdleTimeout is how long a client's link may go without a
	// whole frame before it is closed; zero derives it from the document
	// (see clientIdleTimeout).
	ClientIdleTimeout time.Duration
	// ClientPacketRate and ClientPacketBurst bound the packets per second
	// a provider takes from one client, and the burst above it; zero
	// derives them from the document (see userLimits).
	ClientPacketRate  float64
	ClientPacketBurst int
	// ReplayExpected is the number of packets the epoch's replay filter is
	// sized for (at a false-positive rate of 1e-6).
	ReplayExpected uint64
	// Follow, if set, makes the node follow the directory authorities
	// from one epoch to the next; without it, the node runs on Document
	// until it ends.
	Follow *FollowConfig
	Logger *slog.Logger
	Clock  clock.Clock
	Rand   io.Reader
}

// Node is a running relay.
type Node struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	epochs  atomic.Pointer[epochs]
	// ready is closed once Run serves.
	ready chan struct{}
	// installMu serializes Install calls.
	installMu sync.Mutex
	provider  *provider // nil for a mix
	delayQ    *delay.Queue[forward]
	jobs      chan job
	results   chan result
	listener  net.Listener
	faults    *faults // test builds only; does nothing otherwise
	// disk says when writes to the data directory fail for want of
	// space; the committer's.
	disk diskSpace

	peersMu sync.Mutex
	peers   map[sphinx.NodeID]*peer // guarded by peersMu

	linksMu sync.Mutex
	links   map[*inbound]struct{} // guarded by linksMu
	linksWG sync.WaitGroup        // inbound link readers
	// handshakes holds a token per connection in its handshake.
	handshakes chan struct{}
	acceptor   *wire.Acceptor
	// refusalLog limits the log lines about refused classical links.
	refusalLog *rate.Limiter
}

type forward struct {
	packet []byte
	next   sphinx.NodeID
}

// New builds a node: it finds itself in the document and opens its replay
// log and, for a provider, its mailboxes. It starts nothing; see Run.
func New(cfg Config) (*Node, error) {
	if cfg.LinkWriteTimeout <= 0 {
		cfg.LinkWriteTimeout = defaultLinkWriteTimeout
	}
	if cfg.LinksPerSource <= 0 {
		cfg.LinksPerSource = DefaultLinksPerSource
	}
	if cfg.LinksPerUser <= 0 {
		cfg.LinksPerUser = DefaultLinksPerUser
	}
	self := cfg.Document.Node(cfg.Identity.Public().(ed25519.PublicKey))
	if self == nil {
		return nil, fmt.Errorf("node: this node's identity key is not in the network document of epoch %d", cfg.Document.Epoch)
	}
	if self.Role == directory.RoleProvider && cfg.Accounts == nil {
		return nil, fmt.Errorf("node: provider %q has no account table", self.Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	n := &Node{
		ready:      make(chan struct{}),
		cfg:        cfg,
		log:        cfg.Logger.With("node", self.Name),
		jobs:       make(chan job, 1024),
		results:    make(chan result, 1024),
		peers:      map[sphinx.NodeID]*peer{},
		links:      map[*inbound]struct{}{},
		handshakes: make(chan struct{}, maxHandshakes),
		refusalLog: newRefusalLog(),
	}
	var err error
	if n.acceptor, err = wire.NewAcceptor(cfg.LinkKey, n.classicalAllowed); err != nil {
		return nil, err
	}
	if cfg.Listener != nil {
		n.listener = n.limit(cfg.Listener)
	}
	if n.faults, err = faultsFromEnvironment(); err != nil {
		return nil, err
	}
	n.delayQ = delay.New(cfg.Clock, cfg.DelayQueue, n.route)
	n.metrics = newMetrics(
		func() float64 { return float64(n.delayQ.Len()) },
		func() float64 { q, _ := n.peerLoad(); return float64(q) },
		func() float64 { _, u := n.peerLoad(); return float64(u) },
	)
	n.disk = diskSpace{gauge: n.metrics.diskFull, log: n.log, dataDir: cfg.DataDir, free: freeSpace}
	if err := mkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	first, err := n.openEpoch(cfg.Document, cfg.SignedDocument, cfg.SphinxKey)
	if err != nil {
		return nil, err
	}
	n.epochs.Store(&epochs{cur: first})
	n.metrics.epoch.Set(float64(cfg.Document.Epoch))
	if self.Role == directory.RoleProvider {
		if n.provider, err = newProvider(n, cfg); err != nil {
			first.replay.Close()
			return nil, err
		}
	}
	return n, nil
}

// Registry returns the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.registry }

// Addr returns the address the node listens on, once Run has started.
func (n *Node) Addr() net.Addr {
	if n.listener == nil {
		return nil
	}
	return n.listener.Addr()
}

// Listen opens the node's listener. Run calls it if it has not been called.
func (n *Node) Listen() error {
	addr := n.cfg.Listen
	if addr == "" {
		addr = n.epochs.Load().cur.self.Address
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: failed to listen: %w", err)
	}
	n.listener = n.limit(ln)
	return nil
}

// limit bounds the connections ln holds from one source (see
// Config.LinksPerSource).
func (n *Node) limit(ln net.Listener) net.Listener {
	return listen.Limit(ln, listen.Limits{PerSource: n.cfg.LinksPerSource}, func(reason string) {
		n.metrics.linkErrors.WithLabelValues(reason).Inc()
	})
}

// Ready returns a channel closed once Run accepts links and packets: the
// typed readiness signal (the command passes it on to systemd's notify
// socket), where a log line is for people.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Run serves until ctx is done, then closes links and stores.
func (n *Node) Run(ctx context.Context) error {
	if n.listener == nil {
		if err := n.Listen(); err != nil {
			return err
		}
	}
	self := n.epochs.Load().cur.self
	n.log.Info("node running", "role", self.Role.String(), "layer", self.Layer, "epoch", n.Epoch(), "listen", n.listener.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	// Twice as many workers as cores, so that a worker waiting (on the
	// replay filter's lock, a mailbox commit or a full results queue)
	// leaves the core to another.
	workers := 2 * runtime.GOMAXPROCS(0)
	var workersWG sync.WaitGroup
	for range workers {
		workersWG.Add(1)
		go func() { defer workersWG.Done(); n.work() }()
	}
	committed := make(chan struct{})
	go func() { n.commit(); close(committed) }()
	// The delay queue outlives the intake: at shutdown its packets are
	// still forwarded at their due times, within DrainTimeout.
	delayCtx, stopDelays := context.WithCancel(context.Background())
	delayed := make(chan struct{})
	go func() { n.delayQ.Run(delayCtx); close(delayed) }()
	acceptDone := make(chan struct{})
	go func() { n.accept(ctx); close(acceptDone) }()
	if n.provider != nil {
		start(func() { n.provider.expire(ctx) })
	}
	if n.cfg.Follow != nil {
		start(func() { newFollower(*n.cfg.Follow, n).run(ctx) })
	}
	close(n.ready)
	<-ctx.Done()
	// Stop intake first, then let the pipeline empty in order: links,
	// workers, committer.
	n.listener.Close()
	<-acceptDone
	n.closeLinks()
	n.linksWG.Wait()
	close(n.jobs)
	workersWG.Wait()
	close(n.results)
	<-committed
	wg.Wait()
	n.drain()
	stopDelays()
	<-delayed
	if held := n.delayQ.Drain(); len(held) > 0 {
		n.metrics.dropped.WithLabelValues(dropShutdown).Add(float64(len(held)))
		n.log.Info("stopped with packets still held for their delays", "packets", len(held))
	}
	n.stopPeers()
	var err error
	for _, e := range n.epochs.Load().all() {
		if cerr := e.replay.Close(); err == nil {
			err = cerr
		}
	}
	if n.provider != nil {
		if merr := n.provider.mailbox.Close(); err == nil {
			err = merr
		}
	}
	n.log.Info("node stopped")
	return err
}

// drain waits, at shutdown, until every held packet has been forwarded and
// acknowledged by its next hop, or DrainTimeout has passed. (There is no
// event for "all peers idle", so it looks every 10 ms.)
func (n *Node) drain() {
	timeout := n.cfg.DrainTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := n.cfg.Clock.Now().Add(timeout)
	// Idle twice in a row: a packet moving from a peer's queue to its
	// unacknowledged list is briefly in neither.
	idle := 0
	for idle < 2 && n.cfg.Clock.Now().Before(deadline) {
		if n.delayQ.Len() == 0 && n.peersIdle() {
			idle++
		} else {
			idle = 0
		}
		<-n.cfg.Clock.NewTimerAt(n.cfg.Clock.Now().Add(10 * time.Millisecond)).C()
	}
}

// peersIdle reports whether no peer has packets queued or unacknowledged.
func (n *Node) peersIdle() bool {
	queued, unacked := n.peerLoad()
	return queued == 0 && unacked == 0
}

// peerLoad counts the packets in next hops' queues and those sent but not
// yet acknowledged.
func (n *Node) peerLoad() (queued, unacked int) {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	for _, p := range n.peers {
		q, u := p.hop.Held()
		queued += q
		unacked += u
	}
	return queued, unacked
}

// route is the delay queue's delivery: a packet whose delay is over goes to
// its next hop's queue.
func (n *Node) route(f forward) {
	p := n.peer(f.next)
	if p == nil {
		n.metrics.dropped.WithLabelValues(dropNextHop).Inc()
		return
	}
	if !p.hop.Enqueue(f.packet) {
		n.metrics.dropped.WithLabelValues(dropQueueOverflow).Inc()
	}
}

// nextHopAllowed reports whether a packet may go from this node to next:
// providers send to the first mix layer, each layer to the next, the last to
// providers.
func (n *Node) nextHopAllowed(next *directory.Node) bool {
	cur := n.epochs.Load().cur
	layers := cur.doc.Parameters.Layers
	switch {
	case cur.self.Role == directory.RoleProvider:
		return next.Role == directory.RoleMix && next.Layer == 1
	case cur.self.Layer < layers:
		return next.Role == directory.RoleMix && next.Layer == cur.self.Layer+1
	default:
		return next.Role == directory.RoleProvider
	}
}

func (n *Node) nodeByID(id sphinx.NodeID) *directory.Node {
	return n.epochs.Load().cur.doc.Node(ed25519.PublicKey(id[:]))
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }
