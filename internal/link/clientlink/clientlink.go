// Package clientlink is a client's link to its provider: it sends the
// client's Sphinx packets into the network (the provider is their first hop)
// and fetches the client's mailbox, acknowledging what it has received in the
// next fetch.
//
// It is the network side of a client only: it does not build packets, keep
// a schedule or retransmit end to end.
package clientlink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
)

// Link is an open link to a provider. Send and Fetch may be called from
// different goroutines; Fetch calls must not overlap.
type Link struct {
	conn    *wire.Conn
	replies chan wire.FetchReply
	chunks  chan wire.DocumentChunk
	failed  chan struct{}
	err     error // set before failed is closed

	sendMu sync.Mutex
	sent   uint64 // guarded by sendMu

	ackMu sync.Mutex
	acked uint64 // highest packet frame the provider acknowledged; guarded by ackMu

	lastSeq uint64 // highest mailbox sequence number received, acked in the next fetch
}

// Dial opens a link to the provider at addr whose link key is provider,
// authenticating with key. The link is post-quantum (wire link version 2);
// a provider of the previous release, which answers only classical links,
// is reached over one (version 1) if classical allows it, and refused
// otherwise with an error wrapping wire.ErrPeerClassical.
func Dial(ctx context.Context, addr string, key wire.Keypair, provider [wire.KeySize]byte, frameSize int, classical bool) (*Link, error) {
	c, err := dial(ctx, addr, func(conn net.Conn) (*wire.Conn, error) { return wire.Dial(conn, key, provider, frameSize) })
	if errors.Is(err, wire.ErrPeerClassical) && classical {
		c, err = dial(ctx, addr, func(conn net.Conn) (*wire.Conn, error) { return wire.DialClassical(conn, key, provider, frameSize) })
	}
	if err != nil {
		return nil, err
	}
	l := &Link{conn: c, replies: make(chan wire.FetchReply, wire.FetchBatch), chunks: make(chan wire.DocumentChunk, 16), failed: make(chan struct{})}
	go l.read()
	return l, nil
}

func dial(ctx context.Context, addr string, handshake func(net.Conn) (*wire.Conn, error)) (*wire.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("clientlink: failed to connect to the provider: %w", err)
	}
	c, err := handshake(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clientlink: %w", err)
	}
	return c, nil
}

// Version returns the link's version (wire.VersionPostQuantum or
// wire.VersionClassical).
func (l *Link) Version() int { return l.conn.Version() }

func (l *Link) read() {
	defer close(l.failed)
	for {
		f, err := l.conn.ReadFrame()
		if err != nil {
			l.err = err
			return
		}
		switch f.Type {
		case wire.FrameAck:
			l.ackMu.Lock()
			l.acked = max(l.acked, f.Seq)
			l.ackMu.Unlock()
		case wire.FrameFetchReply:
			var r wire.FetchReply
			if err := r.UnmarshalBinary(f.Body); err != nil {
				l.err = err
				l.conn.Close()
				return
			}
			r.Packet = append([]byte(nil), r.Packet...)
			l.replies <- r
		case wire.FrameDocumentChunk:
			var chunk wire.DocumentChunk
			if err := chunk.UnmarshalBinary(f.Body); err != nil {
				l.err = err
				l.conn.Close()
				return
			}
			chunk.Data = append([]byte(nil), chunk.Data...)
			l.chunks <- chunk
		default:
			l.err = fmt.Errorf("clientlink: provider sent a %s frame", f.Type)
			l.conn.Close()
			return
		}
	}
}

// Send sends one packet to the provider and returns its frame number.
func (l *Link) Send(packet []byte) (uint64, error) {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	l.sent++
	if err := l.conn.WriteFrame(wire.Frame{Type: wire.FramePacket, Seq: l.sent, Body: packet}); err != nil {
		return 0, fmt.Errorf("clientlink: %w", err)
	}
	return l.sent, nil
}

// Acknowledged returns the highest frame number up to which the provider has
// taken the client's packets.
func (l *Link) Acknowledged() uint64 {
	l.ackMu.Lock()
	defer l.ackMu.Unlock()
	return l.acked
}

// SetRetention asks the provider to keep the client's unfetched packets no
// longer than d (0: the provider's own retention), for disappearing
// messages. The provider never keeps them longer than its own retention.
func (l *Link) SetRetention(d time.Duration) error {
	body, err := wire.Retention{Seconds: uint64(max(d, 0) / time.Second)}.MarshalBinary()
	if err != nil {
		return err
	}
	if err := l.conn.WriteFrame(wire.Frame{Type: wire.FrameRetention, Body: body}); err != nil {
		return fmt.Errorf("clientlink: %w", err)
	}
	return nil
}

// Fetched is a packet from the client's mailbox.
type Fetched struct {
	Seq    uint64
	Packet []byte
}

// Fetch sends one fetch request (acknowledging the previous fetch's packets)
// and returns the packets of the reply and how many remain in the mailbox.
func (l *Link) Fetch(ctx context.Context) ([]Fetched, int, error) {
	body, err := wire.FetchRequest{AckUpTo: l.lastSeq}.MarshalBinary()
	if err != nil {
		return nil, 0, err
	}
	if err := l.conn.WriteFrame(wire.Frame{Type: wire.FrameFetch, Body: body}); err != nil {
		return nil, 0, fmt.Errorf("clientlink: %w", err)
	}
	var out []Fetched
	remaining := 0
	for i := range wire.FetchBatch {
		select {
		case r := <-l.replies:
			if int(r.Index) != i {
				return nil, 0, fmt.Errorf("clientlink: fetch reply %d arrived as %d", r.Index, i)
			}
			if r.Seq != 0 {
				out = append(out, Fetched{Seq: r.Seq, Packet: r.Packet})
				l.lastSeq = max(l.lastSeq, r.Seq)
			}
			remaining = int(r.Remaining)
		case <-l.failed:
			return nil, 0, fmt.Errorf("clientlink: link failed: %w", l.err)
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return out, remaining, nil
}

// FetchDocument asks the provider for the signed network document of the
// current epoch or, with next, of the next epoch if the provider holds it
// already (else the current one again). The caller verifies it
// (directory.Verify): the provider only carries it. It must not overlap
// with Fetch.
func (l *Link) FetchDocument(ctx context.Context, next bool) ([]byte, error) {
	req := wire.Frame{Type: wire.FrameDocumentRequest}
	if next {
		req.Body = []byte{wire.DocumentNext}
	}
	if err := l.conn.WriteFrame(req); err != nil {
		return nil, fmt.Errorf("clientlink: %w", err)
	}
	var a wire.DocumentAssembler
	for {
		select {
		case c := <-l.chunks:
			done, err := a.Add(c)
			if err != nil {
				return nil, fmt.Errorf("clientlink: %w", err)
			}
			if done {
				return a.Document(), nil
			}
		case <-l.failed:
			return nil, fmt.Errorf("clientlink: link failed: %w", l.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close closes the link.
func (l *Link) Close() error { return l.conn.Close() }
