package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// provider is what a provider does beyond a mix: it admits its users (the
// account table), bounds each user's packet rate, keeps their mailboxes
// and answers their fetches, retention and document requests. A mix has
// none (Node.provider is nil).
type provider struct {
	n        *Node // for the document, the clock, metrics and logs
	accounts *Accounts
	mailbox  *mailbox.Store

	usersMu sync.Mutex
	users   map[mailbox.ID]*user         // by mailbox; guarded by usersMu
	inflow  map[mailbox.ID]*rate.Limiter // what each mailbox takes in; guarded by usersMu
}

// newProvider opens the provider's mailboxes.
func newProvider(n *Node, cfg Config) (*provider, error) {
	box, err := mailbox.Open(filepath.Join(cfg.DataDir, "mailboxes.db"), cfg.Mailbox)
	if err != nil {
		return nil, err
	}
	p := &provider{n: n, accounts: cfg.Accounts, mailbox: box, users: map[mailbox.ID]*user{}, inflow: map[mailbox.ID]*rate.Limiter{}}
	n.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "backchannel_mailbox_packets", Help: "Packets waiting in mailboxes to be fetched (providers).",
	}, func() float64 {
		total, _ := box.Total()
		return float64(total)
	}))
	return p, nil
}

// admit finds the user whose link key peer is, if any.
func (p *provider) admit(l *inbound, peer [wire.KeySize]byte) (bool, error) {
	if p.accounts == nil {
		return false, nil
	}
	id, ok, err := p.accounts.Lookup(peer)
	if err != nil || !ok {
		return false, err
	}
	l.client, l.box = true, id
	return true, nil
}

// serveFrame answers a user's frame other than a packet; it reports false
// when the link must close.
func (p *provider) serveFrame(l *inbound, f wire.Frame) bool {
	n := p.n
	if !l.user.requests.Allow() {
		// A client that keeps to the document never gets here (see
		// userLimits): the link is closed before any work.
		n.metrics.linkErrors.WithLabelValues("request_rate").Inc()
		n.log.Info("closing a client link that makes more requests than its rate allows", "type", f.Type.String())
		return false
	}
	switch f.Type {
	case wire.FrameFetch:
		if err := p.serveFetch(l, f.Body); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n.writeFailed(l, err)
			} else {
				n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
				n.log.Info("closing a client link after a failed fetch")
			}
			return false
		}
	case wire.FrameRetention:
		var r wire.Retention
		if err := r.UnmarshalBinary(f.Body); err != nil {
			n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
			n.log.Info("closing a client link after a malformed retention request")
			return false
		}
		if err := p.mailbox.SetRetention(l.box, time.Duration(r.Seconds)*time.Second); err != nil {
			n.log.Error("mailbox retention failed", "err", err)
		}
	case wire.FrameDocumentRequest:
		next := len(f.Body) == 1 && f.Body[0] == wire.DocumentNext
		if len(f.Body) > 0 && !next {
			n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
			n.log.Info("closing a client link after a malformed document request")
			return false
		}
		if err := p.serveDocument(l, next); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n.writeFailed(l, err) // a client that stopped reading the reply
			} else {
				n.metrics.linkErrors.WithLabelValues("io").Inc()
			}
			return false
		}
	default:
		n.metrics.linkErrors.WithLabelValues("malformed_frame").Inc()
		n.log.Info("closing a link that sent an unexpected frame", "link", l.kind(), "type", f.Type.String())
		return false
	}
	return true
}

// serveFetch answers a client's fetch: it removes the packets the client
// acknowledges, then sends exactly wire.FetchBatch reply frames.
func (p *provider) serveFetch(l *inbound, body []byte) error {
	n := p.n
	var req wire.FetchRequest
	if err := req.UnmarshalBinary(body); err != nil {
		return err
	}
	if req.AckUpTo > 0 {
		if err := p.mailbox.Ack(l.box, req.AckUpTo); err != nil {
			n.log.Error("mailbox ack failed", "err", err)
		}
	}
	msgs, err := p.mailbox.Fetch(l.box, wire.FetchBatch)
	if err != nil {
		n.log.Error("mailbox fetch failed", "err", err)
		msgs = nil
	}
	total, err := p.mailbox.Count(l.box)
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
func (p *provider) serveDocument(l *inbound, next bool) error {
	n := p.n
	es := n.epochs.Load()
	signed := es.cur.signed
	if next && es.nextSigned != nil {
		signed = es.nextSigned
	}
	chunks, err := wire.DocumentChunks(signed, l.conn.FrameSize())
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

// expire removes old mailbox packets every ExpireEvery.
func (p *provider) expire(ctx context.Context) {
	n := p.n
	every := n.cfg.ExpireEvery
	if every <= 0 {
		every = time.Minute
	}
	for {
		timer := n.cfg.Clock.NewTimerAt(n.cfg.Clock.Now().Add(every))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		if removed, err := p.mailbox.Expire(n.cfg.Clock.Now()); err != nil {
			n.log.Error("mailbox expiry failed", "err", err)
		} else if removed > 0 {
			n.metrics.expired.Add(float64(removed))
			n.log.Info("expired old mailbox packets", "count", removed)
		}
	}
}
