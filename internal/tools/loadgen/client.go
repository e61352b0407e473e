// Package loadgen drives a running backchannel network with many simulated
// clients and measures what it does: packets sent and delivered, end-to-end
// latency, losses, and the CPU and memory of the network's processes.
//
// A simulated client is a state machine, not a full client daemon: it has
// its own link key and mailbox at a provider and its own Noise link, sends
// Sphinx loop packets to its own mailbox through every mix layer at Poisson
// times (the document's mean delay per hop), and fetches its mailbox at a
// fixed interval; it keeps no sessions, no state on disk, no
// retransmissions. Each packet's payload carries the client, a sequence
// number and the sending time, so that delivery is counted exactly and its
// latency measured at the fetch. It does not start the network: the
// command does (cmd/backchannel loadgen).
package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// Account is a simulated client's identity at its provider.
type Account struct {
	LinkKey  wire.Keypair
	Mailbox  mailbox.ID
	Provider string // the provider's name in the document
}

// payloadMagic starts every load packet's payload, so that anything else in
// a mailbox is told apart.
const payloadMagic = "bcload1\x00"

// payloadHeader is magic, client index, sequence number, sending time.
const payloadHeader = len(payloadMagic) + 4 + 8 + 8

// client is one simulated client.
type client struct {
	index    uint32
	account  Account
	provider *directory.Node
	doc      *directory.Document
	format   *sphinx.Format
	rng      *rand.Rand
	stats    *Stats
	link     *clientlink.Link
	seq      uint64
}

// dial opens the client's link.
func (c *client) dial(ctx context.Context) error {
	link, err := clientlink.Dial(ctx, c.provider.Address, c.account.LinkKey, c.provider.LinkKey, wire.FrameSizeFor(c.format.Geometry().PacketLength()), false)
	if err != nil {
		return fmt.Errorf("loadgen: client %d: %w", c.index, err)
	}
	c.link = link
	return nil
}

// send sends loop packets at Poisson times of the given rate until stop.
func (c *client) send(ctx context.Context, rate float64, stop time.Time) error {
	if rate <= 0 {
		return nil
	}
	next := time.Now().Add(time.Duration(c.rng.ExpFloat64() / rate * float64(time.Second)))
	for next.Before(stop) {
		if !sleepUntil(ctx, next) {
			return nil
		}
		packet, err := c.packet(time.Now())
		if err != nil {
			return err
		}
		if _, err := c.link.Send(packet); err != nil {
			return fmt.Errorf("loadgen: client %d: %w", c.index, err)
		}
		c.stats.sent(len(packet))
		next = next.Add(time.Duration(c.rng.ExpFloat64() / rate * float64(time.Second)))
	}
	return nil
}

// packet builds a loop packet sent at now: from the client's provider
// through a random mix of each layer back to its own mailbox, with an
// exponential delay of the document's mean at every hop but the last.
func (c *client) packet(now time.Time) ([]byte, error) {
	c.seq++
	payload := make([]byte, payloadHeader)
	copy(payload, payloadMagic)
	binary.BigEndian.PutUint32(payload[len(payloadMagic):], c.index)
	binary.BigEndian.PutUint64(payload[len(payloadMagic)+4:], c.seq)
	binary.BigEndian.PutUint64(payload[len(payloadMagic)+12:], uint64(now.UnixNano()))
	mean := c.doc.Parameters.MeanDelay
	hop := func(n *directory.Node) sphinx.PathHop {
		d := time.Duration(c.rng.ExpFloat64() * float64(mean))
		ms := min(d.Milliseconds(), math.MaxUint32)
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: sphinx.Commands{sphinx.NodeDelay{Milliseconds: uint32(ms)}}}
	}
	path := []sphinx.PathHop{hop(c.provider)}
	for layer := uint8(1); layer <= c.doc.Parameters.Layers; layer++ {
		mixes := c.doc.Layer(layer)
		path = append(path, hop(mixes[c.rng.IntN(len(mixes))]))
	}
	path = append(path, sphinx.PathHop{ID: c.provider.ID(), PublicKey: c.provider.SphinxKey, Commands: sphinx.Commands{sphinx.Recipient{ID: c.account.Mailbox}}})
	return c.format.NewPacket(randReader{c.rng}, path, payload)
}

// poll fetches the mailbox every interval until stop, and records what
// arrives.
func (c *client) poll(ctx context.Context, interval time.Duration, stop time.Time) error {
	// Clients start their polls spread over one interval, as real ones do.
	next := time.Now().Add(time.Duration(c.rng.Float64() * float64(interval)))
	for next.Before(stop) {
		if !sleepUntil(ctx, next) {
			return nil
		}
		for {
			got, remaining, err := c.link.Fetch(ctx)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return fmt.Errorf("loadgen: client %d: %w", c.index, err)
			}
			now := time.Now()
			for _, f := range got {
				c.receive(f.Packet, now)
			}
			if remaining == 0 {
				break
			}
		}
		next = next.Add(interval)
	}
	return nil
}

// receive records one fetched packet.
func (c *client) receive(raw []byte, now time.Time) {
	var d wire.Delivery
	if err := d.UnmarshalBinary(raw); err != nil || len(d.Payload) < payloadHeader || string(d.Payload[:len(payloadMagic)]) != payloadMagic {
		c.stats.foreign()
		return
	}
	p := d.Payload[len(payloadMagic):]
	index, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint64(p[4:])
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(p[12:])))
	if index != c.index {
		c.stats.foreign()
		return
	}
	c.stats.delivered(index, seq, now.Sub(sent))
}

// sleepUntil waits until t; false if ctx ended first. The load's schedule
// is on the real clock: it is what is measured.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// randReader is a math/rand source as an io.Reader: the packets' ephemeral
// keys and padding need no secrecy here (they carry no secret and are
// measured, not used), and crypto/rand would add a system call per packet.
type randReader struct{ r *rand.Rand }

func (r randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}
