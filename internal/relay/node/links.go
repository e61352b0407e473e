package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// inbound is a link another node or a client opened to this node. It
// acknowledges packet frames in order: FrameAck(n) once frames 1..n have all
// been dealt with.
type inbound struct {
	conn   *wire.Conn
	client bool       // a provider's user, not a node
	box    mailbox.ID // the client's mailbox

	// limit bounds a client's packet rate (see clientLimiter).
	limit *rate.Limiter

	mu    sync.Mutex
	next  uint64          // lowest frame not yet dealt with; guarded by mu
	done  map[uint64]bool // dealt with, above next; guarded by mu
	acked uint64          // last acknowledgement sent; guarded by mu
	// ackDue wakes the link's ack writer: acknowledgements leave from a
	// goroutine of the link's own, so that a peer that does not read
	// stalls nothing but its link.
	ackDue chan struct{}
}

// Link limits.
const (
	// defaultLinkWriteTimeout is how long a write to a link may block
	// before the link is closed: a peer that stops reading loses its
	// link (Config.LinkWriteTimeout).
	defaultLinkWriteTimeout = 30 * time.Second
	// maxHandshakes is how many connections may be in their handshake at
	// once; more are closed at once, so that a flood of connections costs
	// the node a bounded number of goroutines and buffers, and the links
	// already up keep their service.
	maxHandshakes = 256
)

// kind names the link for logs without naming the peer: logs never carry a
// client's address, key or mailbox (as Tor's SafeLogging), and a node's
// inbound links are told apart by nothing they need.
func (l *inbound) kind() string {
	if l.client {
		return "client"
	}
	return "node"
}

func (l *inbound) complete(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done[seq] = true
	for l.done[l.next] {
		delete(l.done, l.next)
		l.next++
	}
}

// sendAck asks the link's ack writer to acknowledge what is done; it never
// blocks.
func (l *inbound) sendAck() {
	select {
	case l.ackDue <- struct{}{}:
	default: // already asked; the writer reads the latest state
	}
}

// writeAcks sends the acknowledgements sendAck asks for, until done. A
// failed write (the peer stopped reading for the write timeout) closes the
// link; its reader sees that.
func (n *Node) writeAcks(l *inbound, done <-chan struct{}) {
	for {
		select {
		case <-l.ackDue:
		case <-done:
			return
		}
		l.mu.Lock()
		upTo := l.next - 1
		if upTo == l.acked {
			l.mu.Unlock()
			continue
		}
		l.acked = upTo
		l.mu.Unlock()
		if err := l.conn.WriteFrame(wire.Frame{Type: wire.FrameAck, Seq: upTo}); err != nil {
			n.writeFailed(l, err)
			return
		}
	}
}

// accept serves inbound links until the listener is closed.
func (n *Node) accept(ctx context.Context) {
	for {
		conn, err := n.listener.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				n.log.Error("accept failed", "err", err)
			}
			return
		}
		select {
		case n.handshakes <- struct{}{}:
		default:
			conn.Close()
			n.metrics.linkErrors.WithLabelValues("handshake_limit").Inc()
			continue
		}
		n.linksWG.Add(1)
		go func() {
			defer n.linksWG.Done()
			n.serveInbound(conn)
		}()
	}
}

func (n *Node) serveInbound(conn net.Conn) {
	l := &inbound{next: 1, done: map[uint64]bool{}, ackDue: make(chan struct{}, 1)}
	c, err := wire.Accept(conn, n.cfg.LinkKey, func(peer [wire.KeySize]byte) error {
		return n.authorize(l, peer)
	}, n.frame)
	<-n.handshakes
	if err != nil {
		conn.Close()
		n.metrics.linkErrors.WithLabelValues("handshake").Inc()
		// The error may name the peer's address, which for a client must
		// not be logged (see linkKind).
		n.log.Debug("inbound handshake failed")
		return
	}
	l.conn = c
	c.SetWriteTimeout(n.cfg.LinkWriteTimeout)
	if !l.client {
		c.UseLargeBuffers()
	} else {
		l.limit = n.clientLimiter(l.box)
	}
	if !n.addLink(l) {
		c.Close()
		return
	}
	defer n.removeLink(l)
	done := make(chan struct{})
	defer close(done)
	go n.writeAcks(l, done)
	limited := false
	var seq uint64
	for {
		f, err := c.ReadFrame()
		if err != nil {
			if errors.Is(err, wire.ErrMalformedFrame) {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a link that sent a malformed frame", "link", l.kind())
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.metrics.linkErrors.WithLabelValues("io").Inc()
			}
			return
		}
		switch {
		case f.Type == wire.FramePacket:
			seq++
			if f.Seq != seq {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a link whose frames are out of sequence", "link", l.kind(), "got", f.Seq, "want", seq)
				return
			}
			n.metrics.packetsIn.Inc()
			if l.limit != nil && !l.limit.Allow() {
				// Over its rate: dropped before any work, and
				// acknowledged like any drop.
				n.metrics.dropped.WithLabelValues(dropClientRate).Inc()
				if !limited {
					limited = true
					n.log.Info("a client sends more packets than its rate allows; the excess is dropped")
				}
				l.complete(f.Seq)
				l.sendAck()
				continue
			}
			n.jobs <- job{packet: append([]byte(nil), f.Body...), from: l, seq: f.Seq}
		case f.Type == wire.FrameFetch && l.client:
			if err := n.serveFetch(l, f.Body); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					n.writeFailed(l, err)
				} else {
					n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
					n.log.Info("closing a client link after a failed fetch")
				}
				return
			}
		case f.Type == wire.FrameRetention && l.client:
			var r wire.Retention
			if err := r.UnmarshalBinary(f.Body); err != nil {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a client link after a malformed retention request")
				return
			}
			if err := n.mailbox.SetRetention(l.box, time.Duration(r.Seconds)*time.Second); err != nil {
				n.log.Error("mailbox retention failed", "err", err)
			}
		case f.Type == wire.FrameDocumentRequest && l.client:
			next := len(f.Body) == 1 && f.Body[0] == wire.DocumentNext
			if len(f.Body) > 0 && !next {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a client link after a malformed document request")
				return
			}
			if err := n.serveDocument(l, next); err != nil {
				n.metrics.linkErrors.WithLabelValues("io").Inc()
				return
			}
		case f.Type == wire.FrameNoOp:
		default:
			n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
			n.log.Info("closing a link that sent an unexpected frame", "link", l.kind(), "type", f.Type.String())
			return
		}
	}
}

// authorize admits the nodes of the documents held (the current one, the
// previous one during its grace period, the next one once known: nodes do
// not change epochs at the very same instant) and, at a provider, the
// clients of its account table.
func (n *Node) authorize(l *inbound, peer [wire.KeySize]byte) error {
	for _, doc := range n.epochs.Load().documents() {
		for i := range doc.Nodes {
			if doc.Nodes[i].LinkKey == peer {
				return nil
			}
		}
	}
	if n.cfg.Accounts != nil {
		id, ok, err := n.cfg.Accounts.Lookup(peer)
		if err != nil {
			return err
		}
		if ok {
			l.client, l.box = true, id
			return nil
		}
	}
	return fmt.Errorf("unknown link key")
}

func (n *Node) addLink(l *inbound) bool {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	if n.links == nil {
		return false // closing
	}
	n.links[l] = struct{}{}
	return true
}

func (n *Node) removeLink(l *inbound) {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	if n.links != nil {
		delete(n.links, l)
	}
	l.conn.Close()
}

func (n *Node) closeLinks() {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	for l := range n.links {
		l.conn.Close()
	}
	n.links = nil
}

// serveFetch answers a client's fetch: it removes the packets the client
// acknowledges, then sends exactly wire.FetchBatch reply frames.
func (n *Node) serveFetch(l *inbound, body []byte) error {
	var req wire.FetchRequest
	if err := req.UnmarshalBinary(body); err != nil {
		return err
	}
	if req.AckUpTo > 0 {
		if err := n.mailbox.Ack(l.box, req.AckUpTo); err != nil {
			n.log.Error("mailbox ack failed", "err", err)
		}
	}
	msgs, err := n.mailbox.Fetch(l.box, wire.FetchBatch)
	if err != nil {
		n.log.Error("mailbox fetch failed", "err", err)
		msgs = nil
	}
	total, err := n.mailbox.Count(l.box)
	if err != nil {
		total = len(msgs)
	}
	frames := make([]wire.Frame, 0, wire.FetchBatch)
	for i := range wire.FetchBatch {
		reply := wire.FetchReply{Index: uint8(i), Remaining: uint32(max(total-len(msgs), 0))}
		if i < len(msgs) {
			reply.Seq, reply.Packet = msgs[i].Seq, msgs[i].Packet
		}
		body, err := reply.MarshalBinary()
		if err != nil {
			return err
		}
		frames = append(frames, wire.Frame{Type: wire.FrameFetchReply, Body: body})
	}
	// One write for the whole reply: a system call per frame was a large
	// part of a provider's cost with many clients polling.
	return l.conn.WriteFrames(frames)
}

// serveDocument sends a client the signed network document: the current
// one, or the next one if asked for and held.
func (n *Node) serveDocument(l *inbound, next bool) error {
	es := n.epochs.Load()
	signed := es.cur.signed
	if next && es.nextSigned != nil {
		signed = es.nextSigned
	}
	chunks, err := wire.DocumentChunks(signed, n.frame)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := l.conn.WriteFrame(wire.Frame{Type: wire.FrameDocumentChunk, Body: c}); err != nil {
			return err
		}
	}
	return nil
}

// peer is the outgoing link to one next hop: a bounded queue, and a
// goroutine that keeps a link up (reconnecting with backoff) and
// retransmits what the next hop has not acknowledged.
type peer struct {
	node   *directory.Node
	queue  chan []byte
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	unacked [][]byte // sent on the current link, not yet acknowledged; guarded by mu
	sent    uint64   // frames sent on the current link; guarded by mu
	acked   uint64   // frames acknowledged on the current link; guarded by mu
}

// maxUnacked bounds the packets a peer link has in flight; maxBatch is the
// most frames written with one system call.
const (
	maxUnacked = 4096
	maxBatch   = 32
)

// peer returns the outgoing link to the node with the given ID, starting
// it on first use.
func (n *Node) peer(id sphinx.NodeID) *peer {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if p, ok := n.peers[id]; ok {
		return p
	}
	dn := n.epochs.Load().cur.doc.Node(ed25519.PublicKey(id[:]))
	if dn == nil || n.peers == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{node: dn, queue: make(chan []byte, n.cfg.PeerQueue), cancel: cancel, done: make(chan struct{})}
	n.peers[id] = p
	go func() {
		defer close(p.done)
		n.runPeer(ctx, p)
	}()
	return p
}

// retirePeers closes the links to next hops the current document no longer
// lists. It is called once the previous epoch's grace period is over, when
// no packet made for an earlier document can still be valid: a mix left
// out because it stayed down (or was removed) is no longer dialled every
// few seconds for ever, and the packets held for it, which could never be
// delivered, are dropped and counted (their senders retransmit along routes
// of the new document).
func (n *Node) retirePeers() {
	cur := n.epochs.Load().cur.doc
	var gone []*peer
	n.peersMu.Lock()
	for id, p := range n.peers {
		if cur.Node(ed25519.PublicKey(id[:])) == nil {
			gone = append(gone, p)
			delete(n.peers, id)
		}
	}
	n.peersMu.Unlock()
	for _, p := range gone {
		p.cancel()
		<-p.done
		p.mu.Lock()
		held := len(p.queue) + len(p.unacked)
		p.mu.Unlock()
		n.metrics.dropped.WithLabelValues(dropNextHopLeft).Add(float64(held))
		n.log.Info("next hop is not in the network document any more; its link is closed", "peer", p.node.Name, "epoch", cur.Epoch, "packets_dropped", held)
	}
}

func (n *Node) stopPeers() {
	n.peersMu.Lock()
	peers := n.peers
	n.peers = nil
	n.peersMu.Unlock()
	for _, p := range peers {
		p.cancel()
		<-p.done
	}
}

// runPeer keeps a link to a next hop until ctx is done, reconnecting when
// it fails. The backoff doubles while connecting fails and starts again
// from its least once a link was up, so that a path that resets
// connections every few seconds costs a reconnection each time, not the
// 5 s ceiling (found by e2e/TestUnreliableLinks).
func (n *Node) runPeer(ctx context.Context, p *peer) {
	const least = 50 * time.Millisecond
	backoff := least
	for ctx.Err() == nil {
		up, err := n.peerSession(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if up {
			backoff = least
		}
		n.log.Info("link to next hop lost; reconnecting", "peer", p.node.Name, "err", err, "backoff", backoff)
		timer := n.cfg.Clock.NewTimerAt(n.cfg.Clock.Now().Add(backoff + rand.N(backoff/2+1)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// peerSession dials the peer and serves the link until it fails or ctx is
// done; up reports whether the handshake succeeded.
func (n *Node) peerSession(ctx context.Context, p *peer) (up bool, err error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", p.node.Address)
	if err != nil {
		return false, err
	}
	c, err := wire.Dial(conn, n.cfg.LinkKey, p.node.LinkKey, n.frame)
	if err != nil {
		conn.Close()
		n.metrics.linkErrors.WithLabelValues("handshake").Inc()
		return false, err
	}
	c.UseLargeBuffers()
	// A next hop that stops reading cannot hold this link for ever: its
	// writes time out as an inbound link's do, the link is made again and
	// what was not acknowledged is sent again.
	c.SetWriteTimeout(n.cfg.LinkWriteTimeout)
	defer c.Close()
	return true, n.servePeer(ctx, p, c)
}

// servePeer resends on a new link what was not acknowledged on the last
// one, then sends from the queue until the link fails or ctx is done.
func (n *Node) servePeer(ctx context.Context, p *peer, c *wire.Conn) error {

	p.mu.Lock()
	resend := p.unacked
	p.unacked, p.sent, p.acked = nil, 0, 0
	p.mu.Unlock()

	failed := make(chan error, 1)
	acked := make(chan struct{}, 1)
	go func() { failed <- n.readAcks(c, p, acked) }()

	// send writes packets in as few system calls as the window allows,
	// numbering each and keeping it until it is acknowledged.
	frames := make([]wire.Frame, 0, maxBatch)
	send := func(packets [][]byte) (err error) {
		frames = frames[:0]
		taken := 0 // packets of this call now kept in p.unacked
		defer func() {
			if err != nil {
				// Keep what was not sent for the next link.
				p.mu.Lock()
				p.unacked = append(p.unacked, packets[taken:]...)
				p.mu.Unlock()
			}
		}()
		flush := func() error {
			if len(frames) == 0 {
				return nil
			}
			err := c.WriteFrames(frames)
			if err == nil {
				n.metrics.packetsOut.Add(float64(len(frames)))
			}
			frames = frames[:0]
			return err
		}
		for _, packet := range packets {
			for {
				p.mu.Lock()
				full := len(p.unacked) >= maxUnacked
				if !full {
					p.sent++
					p.unacked = append(p.unacked, packet)
					taken++
					frames = append(frames, wire.Frame{Type: wire.FramePacket, Seq: p.sent, Body: packet})
				}
				p.mu.Unlock()
				if !full {
					break
				}
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-acked:
				case err := <-failed:
					return err
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return flush()
	}
	for len(resend) > 0 {
		k := min(len(resend), maxBatch)
		if err := send(resend[:k]); err != nil {
			p.mu.Lock()
			p.unacked = append(p.unacked, resend[k:]...)
			p.mu.Unlock()
			return err
		}
		resend = resend[k:]
	}
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case packet := <-p.queue:
			batch = append(batch[:0], packet)
		drain:
			for len(batch) < maxBatch {
				select {
				case packet := <-p.queue:
					batch = append(batch, packet)
				default:
					break drain
				}
			}
			if err := send(batch); err != nil {
				return err
			}
		}
	}
}

// readAcks applies the next hop's acknowledgements until the link fails.
func (n *Node) readAcks(c *wire.Conn, p *peer, acked chan<- struct{}) error {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			c.Close()
			return err
		}
		if f.Type != wire.FrameAck {
			c.Close()
			return fmt.Errorf("next hop sent a %s frame", f.Type)
		}
		p.mu.Lock()
		if f.Seq > p.acked && f.Seq <= p.sent {
			drop := int(f.Seq - p.acked)
			clear(p.unacked[:drop])
			p.unacked = p.unacked[drop:]
			p.acked = f.Seq
		}
		p.mu.Unlock()
		select {
		case acked <- struct{}{}:
		default:
		}
	}
}

// writeFailed closes a link whose write failed: a peer that stopped
// reading (the write timed out) is counted as a slow reader.
func (n *Node) writeFailed(l *inbound, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		n.metrics.linkErrors.WithLabelValues("slow_reader").Inc()
		n.log.Info("closing a link whose peer does not read", "link", l.kind(), "after", n.cfg.LinkWriteTimeout)
	}
	l.conn.Close()
}

// clientLimiter returns the packet rate limiter of the client with the
// mailbox box, shared by all its links. The rate is the node's
// ClientPacketRate, or else four times the packets per second the
// document asks of a client (send slots, loops and drops) and at least 100;
// the burst is ClientPacketBurst, or else ten seconds' worth and at least
// 2,000 (a client catching up after a pause sends a burst).
func (n *Node) clientLimiter(box mailbox.ID) *rate.Limiter {
	n.limitsMu.Lock()
	defer n.limitsMu.Unlock()
	if l, ok := n.limits[box]; ok {
		return l
	}
	r, burst := n.cfg.ClientPacketRate, n.cfg.ClientPacketBurst
	if r <= 0 {
		p := n.epochs.Load().cur.doc.Parameters
		r = max(4*(p.SendRate+p.LoopRate+p.DropRate), 100)
	}
	if burst <= 0 {
		burst = max(int(10*r), 2000)
	}
	l := rate.NewLimiter(rate.Limit(r), burst)
	n.limits[box] = l
	return l
}
