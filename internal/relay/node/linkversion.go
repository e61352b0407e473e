package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Links are post-quantum (wire version 2). While a network moves from the
// previous release, classical links (version 1) are still taken from peers
// that offer nothing else, and opened to next hops that answer in version 1,
// up to the epoch the operators chose (Config.ClassicalLinksUntil); from it
// they are refused, counted and logged.

// classicalAllowed reports whether classical links are still taken and
// opened in the current epoch.
func (n *Node) classicalAllowed() bool {
	return n.epochs.Load().cur.doc.Epoch < n.cfg.ClassicalLinksUntil
}

// newRefusalLog limits the log lines about refused classical links to one
// a minute: an old peer reconnects every few seconds, and the counter says
// how many there were.
func newRefusalLog() *rate.Limiter { return rate.NewLimiter(rate.Every(time.Minute), 1) }

// handshakeFailed counts and, for a refused classical peer, logs a failed
// inbound handshake. The error may name the peer's address, which for a
// client must not be logged: the log line does not carry it.
func (n *Node) handshakeFailed(err error) {
	if !errors.Is(err, wire.ErrClassicalRefused) {
		n.metrics.linkErrors.WithLabelValues("handshake").Inc()
		n.log.Debug("inbound handshake failed")
		return
	}
	n.metrics.linkErrors.WithLabelValues("classical_refused").Inc()
	if n.refusalLog.Allow() {
		n.log.Warn("refused a link that offers no post-quantum key exchange: this node takes link version 2 (TLS 1.3 with X25519MLKEM768) only; the peer must run a release that speaks it",
			"classical_links_until_epoch", n.cfg.ClassicalLinksUntil)
	}
}

// linkUp counts an established link by version and direction.
func (n *Node) linkUp(c *wire.Conn, direction string) {
	n.metrics.links.WithLabelValues(fmt.Sprint(c.Version()), direction).Inc()
}

// dialLink makes an authenticated link to a next hop: post-quantum, or
// classical to a next hop of the previous release while the network still
// takes classical links.
func (n *Node) dialLink(ctx context.Context, dn *directory.Node) (*wire.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", dn.Address)
	if err != nil {
		return nil, err
	}
	c, err := wire.Dial(conn, n.cfg.LinkKey, dn.LinkKey, n.linkFrameSize())
	if err == nil {
		return c, nil
	}
	conn.Close()
	if !errors.Is(err, wire.ErrPeerClassical) {
		return nil, err
	}
	if !n.classicalAllowed() {
		n.metrics.linkErrors.WithLabelValues("classical_refused").Inc()
		return nil, fmt.Errorf("%w; this node opens no classical links since epoch %d", err, n.cfg.ClassicalLinksUntil)
	}
	if conn, err = d.DialContext(ctx, "tcp", dn.Address); err != nil {
		return nil, err
	}
	if c, err = wire.DialClassical(conn, n.cfg.LinkKey, dn.LinkKey, n.frameSizes().Classical); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// linkFrameSize is the frame size of the links this node opens: that of
// the current epoch's packets, or of the previous epoch's if larger, since
// those may still be in flight after the network changed its packet format.
func (n *Node) linkFrameSize() int {
	es := n.epochs.Load()
	size := wire.FrameSizeFor(es.cur.format.Geometry().PacketLength())
	if es.prev != nil {
		size = max(size, wire.FrameSizeFor(es.prev.format.Geometry().PacketLength()))
	}
	return size
}

// frameSizes are the frame sizes of the links this node takes: those of
// the current geometry in every packet format, whichever epoch the peer
// is in and whether it has moved yet (a client whose last document
// predates a format change connects with the old size, fetches the
// document and connects again); on a classical link, those of X25519
// packets, the only format the previous release knows.
func (n *Node) frameSizes() wire.FrameSizes {
	g := n.epochs.Load().cur.format.Geometry()
	var sizes wire.FrameSizes
	for _, s := range sphinx.Schemes {
		g.Scheme = s
		sizes.Negotiated = append(sizes.Negotiated, wire.FrameSizeFor(g.PacketLength()))
		if s == sphinx.X25519 {
			sizes.Classical = wire.FrameSizeFor(g.PacketLength())
		}
	}
	return sizes
}
