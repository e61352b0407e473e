package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/backchannel/backchannel/internal/link/hop"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// inbound is a link another node or a client opened to this node. Its
// packet frames are acknowledged in order by the hop protocol's receiving
// half, once the pipeline has dealt with them.
type inbound struct {
	conn   *wire.Conn
	client bool       // a provider's user, not a node
	box    mailbox.ID // the client's mailbox
	acks   *hop.Receiver

	// user is a client's state at its provider: its rate limits and
	// links (see provider.addLink); nil for a node's link.
	user *user
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
	// minClientIdle is the least time a client's link may go without a
	// frame (see clientIdleTimeout).
	minClientIdle = 30 * time.Second
	// DefaultLinksPerSource is Config.LinksPerSource's default: a few
	// dozen users behind one NAT, and a quarter of the handshake slots.
	DefaultLinksPerSource = 64
)

// clientIdleTimeout is how long a client's link may go without a frame
// (a whole one: a frame half sent counts as none) before the provider
// closes it: four poll intervals, since a client fetches at every one, and
// at least minClientIdle.
func clientIdleTimeout(p directory.Parameters) time.Duration {
	return max(4*p.PollInterval, minClientIdle)
}

// kind names the link for logs without naming the peer: logs never carry a
// client's address, key or mailbox (as Tor's SafeLogging), and a node's
// inbound links are told apart by nothing they need.
func (l *inbound) kind() string {
	if l.client {
		return "client"
	}
	return "node"
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
	l := &inbound{acks: hop.NewReceiver()}
	c, err := n.acceptor.Accept(conn, func(peer [wire.KeySize]byte) error {
		return n.authorize(l, peer)
	}, n.frameSizes())
	<-n.handshakes
	if err != nil {
		conn.Close()
		n.handshakeFailed(err)
		return
	}
	n.linkUp(c, "in")
	l.conn = c
	c.SetWriteTimeout(n.cfg.LinkWriteTimeout)
	if !l.client {
		c.UseLargeBuffers()
	}
	if !n.addLink(l) {
		c.Close()
		return
	}
	defer n.removeLink(l)
	var idle time.Duration
	if l.client {
		if old := n.provider.addLink(l); old != nil {
			n.metrics.linkErrors.WithLabelValues("replaced").Inc()
			old.conn.Close()
		}
		defer n.provider.removeLink(l)
		idle = n.cfg.ClientIdleTimeout
		if idle <= 0 {
			idle = clientIdleTimeout(n.epochs.Load().cur.doc.Parameters)
		}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		if err := l.acks.WriteAcks(c, done); err != nil {
			n.writeFailed(l, err)
		}
	}()
	limited := false
	for {
		if idle > 0 {
			c.SetReadDeadline(time.Now().Add(idle))
		}
		f, err := c.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n.metrics.linkErrors.WithLabelValues("idle").Inc()
			} else if errors.Is(err, wire.ErrMalformedFrame) {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a link that sent a malformed frame", "link", l.kind())
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.metrics.linkErrors.WithLabelValues("io").Inc()
			}
			return
		}
		switch {
		case f.Type == wire.FramePacket:
			if err := l.acks.Arrived(f.Seq); err != nil {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a link whose frames are out of sequence", "link", l.kind(), "err", err)
				return
			}
			n.metrics.packetsIn.Inc()
			if l.user != nil && !l.user.packets.Allow() {
				// Over its rate: dropped before any work, and
				// acknowledged like any drop.
				n.metrics.dropped.WithLabelValues(dropClientRate).Inc()
				if !limited {
					limited = true
					n.log.Info("a client sends more packets than its rate allows; the excess is dropped")
				}
				l.acks.Complete(f.Seq)
				l.acks.Acknowledge()
				continue
			}
			n.jobs <- job{packet: append([]byte(nil), f.Body...), from: l, seq: f.Seq}
		case f.Type == wire.FrameNoOp:
		case l.client:
			if !n.provider.serveFrame(l, f) {
				return
			}
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
	if n.provider != nil {
		if ok, err := n.provider.admit(l, peer); ok || err != nil {
			return err
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

// peer is the outgoing link to one next hop: the hop protocol's sending
// half (a bounded queue, retransmission of what is not acknowledged) and
// the goroutine that keeps its link up.
type peer struct {
	node   *directory.Node
	hop    *hop.Sender
	reach  *reach
	cancel context.CancelFunc
	done   chan struct{}
}

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
	p := n.startPeer(dn)
	n.peers[id] = p
	return p
}

// startPeer starts the link to a next hop; cancel stops it.
func (n *Node) startPeer(dn *directory.Node) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{node: dn, cancel: cancel, done: make(chan struct{}), reach: &reach{n: n, name: dn.Name}}
	p.hop = hop.NewSender(hop.SenderConfig{
		Queue: n.cfg.PeerQueue,
		Clock: n.cfg.Clock,
		Dial:  func(ctx context.Context) (hop.Conn, error) { return n.dialPeer(ctx, dn) },
		Lost:  p.reach.lost,
		Up:    p.reach.up,
		Wrote: func(frames int) { n.metrics.packetsOut.Add(float64(frames)) },
		TooLarge: func(packets int) {
			n.metrics.dropped.WithLabelValues(dropFrameTooSmall).Add(float64(packets))
		},
	})
	go func() {
		defer close(p.done)
		p.hop.Run(ctx)
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
		p.reach.retired()
		queued, unacked := p.hop.Held()
		held := queued + unacked
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

// dialPeer makes an authenticated link to a next hop.
func (n *Node) dialPeer(ctx context.Context, dn *directory.Node) (hop.Conn, error) {
	c, err := n.dialLink(ctx, dn)
	if err != nil {
		if !errors.Is(err, wire.ErrPeerClassical) {
			n.metrics.linkErrors.WithLabelValues("handshake").Inc()
		}
		return nil, err
	}
	n.linkUp(c, "out")
	c.UseLargeBuffers()
	// A next hop that stops reading cannot hold this link for ever: its
	// writes time out as an inbound link's do, the link is made again and
	// what was not acknowledged is sent again.
	c.SetWriteTimeout(n.cfg.LinkWriteTimeout)
	return c, nil
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
