package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// The client follows the network's epochs through its provider. At every
// connection it takes the provider's current document, checked against
// the configured authorities at the local time. From three quarters of an
// epoch it asks the provider for the next epoch's document (which the
// provider holds once the authorities have published it) and keeps it
// until half of the epoch change's grace period has passed
// (directory.Document.Grace): nodes take the old keys for the whole grace
// period, so a switch a little late is safe where a switch early is not.
// A document past its end (beyond the allowed clock skew) with no
// successor stops the sending of packets — nodes would not take them —
// and says so in Stats until a newer one arrives.
//
// A network may change its packet format at an epoch boundary (X25519 to
// X-Wing packets; see geometryFollows). The client follows: it builds the
// new document's packets from the switch on, notes the format in its
// profile (so that it connects with the right frame size after a restart),
// and connects again for frames of the new size (errFormatChanged). A
// client whose last document predates the change connects with the old
// size, which providers still take, and connects again once it has the
// provider's document.

// errFormatChanged ends a link whose frames do not fit the packets of the
// document just taken: the client connects again at once, with frames of
// the new size.
var errFormatChanged = errors.New("client: the network changed its packet format; connecting again for frames of the new size")

// geometryFollows checks that the client can go on from geometry g to h:
// the packet format may change, not the hops or the payload length that
// the messages queued and fragmented depend on; nor to a format whose
// fragments are smaller than the ones already cut.
func geometryFollows(g, h sphinx.Geometry) error {
	if g.MaxHops != h.MaxHops || g.UserPayloadLength != h.UserPayloadLength {
		return fmt.Errorf("client: the network changed its packet geometry from %v to %v; this client cannot follow", g, h)
	}
	if fragmentCapacity(h) < fragmentCapacity(g) {
		return fmt.Errorf("client: the network changed its packet format from %v to %v, whose fragments are smaller; this client cannot follow", g.Scheme, h.Scheme)
	}
	return nil
}

func (c *Client) trust() directory.Trust {
	n := c.profile.Network
	return directory.Trust{Authorities: n.Authorities, Threshold: n.Threshold, ClockSkew: n.ClockSkew}
}

// refreshDocument fetches the current network document from the provider
// and verifies it at the local time.
func (c *Client) refreshDocument(ctx context.Context, link Link) error {
	raw, err := link.FetchDocument(ctx, false)
	if err != nil {
		return err
	}
	doc, err := directory.Verify(raw, c.trust(), c.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("client: the provider's network document: %w", err)
	}
	return c.useDocument(doc)
}

// useDocument makes doc the client's network document. It takes c.mu.
func (c *Client) useDocument(doc *directory.Document) error {
	format, err := sphinx.New(doc.Parameters.Geometry)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	if c.doc != nil {
		if err := geometryFollows(c.doc.Parameters.Geometry, doc.Parameters.Geometry); err != nil {
			return err
		}
	}
	if doc.Node(ed25519.PublicKey(c.profile.Network.Provider.Identity[:])) == nil {
		return fmt.Errorf("client: your provider %s is not in the network document of epoch %d", c.profile.Network.Provider.Name, doc.Epoch)
	}
	if c.doc == nil || c.doc.Epoch != doc.Epoch {
		// The first document is logged too: a daemon started late in an
		// epoch says which it is in.
		c.log.Info("new network epoch", "epoch", doc.Epoch, "valid_until", doc.ValidUntil, "first", c.doc == nil)
	}
	c.doc, c.format = doc, format
	if c.next != nil && c.next.Epoch <= doc.Epoch {
		c.next = nil
	}
	c.stats.Epoch, c.stats.ValidUntil, c.stats.DocumentProblem = doc.Epoch, doc.ValidUntil, ""
	c.notify()
	if g := doc.Parameters.Geometry; c.profile.Network.Geometry != g {
		c.log.Info("the network's packet format", "format", g.Scheme.String(), "packet_bytes", g.PacketLength())
		c.profile.Network.Geometry = g
		if err := c.store.put(profileLabel, c.profile); err != nil {
			return fmt.Errorf("client: noting the network's packet format: %w", err)
		}
	}
	if c.linkFrame != 0 && c.linkFrame != wire.FrameSizeFor(doc.Parameters.Geometry.PacketLength()) {
		return errFormatChanged
	}
	return nil
}

// followDocuments does what is due at the local time: switch to the next
// document, fetch it, or report the current one expired. Only a failed
// link is returned: the rest is logged and shown in Stats. It takes c.mu.
func (c *Client) followDocuments(ctx context.Context, link Link) error {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	cur, next := c.doc, c.next
	c.unlock()
	length := cur.ValidUntil.Sub(cur.ValidFrom)
	if next == nil && !now.Before(cur.ValidFrom.Add(length*3/4)) {
		raw, err := link.FetchDocument(ctx, true)
		if err != nil {
			return err
		}
		if err := c.holdNext(raw, now); err != nil {
			c.log.Warn("the next network document is not usable", "err", err)
		}
		c.mu.Lock()
		next = c.next
		c.unlock()
	}
	if next != nil && !now.Before(next.ValidFrom.Add(cur.Grace()/2)) {
		return c.useDocument(next)
	}
	skew := c.profile.Network.ClockSkew
	c.mu.Lock()
	expired := c.next == nil && now.After(cur.ValidUntil.Add(skew))
	c.unlock()
	if !expired {
		return nil
	}
	// Perhaps the provider moved on by more than one epoch.
	if err := c.refreshDocument(ctx, link); err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.unlock()
	if c.stats.DocumentProblem == "" {
		c.stats.DocumentProblem = fmt.Sprintf("the network document of epoch %d ended at %s and the provider has no newer one "+
			"(are the directory authorities down, or is this computer's clock more than %v fast?); nothing is sent until one arrives",
			cur.Epoch, cur.ValidUntil.UTC().Format(time.RFC3339), skew)
		c.log.Error("no current network document", "epoch", cur.Epoch, "ended", cur.ValidUntil, "clock_skew", skew)
		c.notify()
	}
	return nil
}

// holdNext keeps raw as the next document if it is one: signed by enough
// authorities, of a later epoch than the current one and not already over. It takes c.mu.
func (c *Client) holdNext(raw []byte, now time.Time) error {
	doc, err := directory.VerifySignatures(raw, c.trust())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.unlock()
	if doc.Epoch <= c.doc.Epoch {
		return nil // the provider has no next one yet
	}
	if now.After(doc.ValidUntil.Add(c.profile.Network.ClockSkew)) {
		return fmt.Errorf("client: the document of epoch %d ended at %v", doc.Epoch, doc.ValidUntil)
	}
	if err := geometryFollows(c.doc.Parameters.Geometry, doc.Parameters.Geometry); err != nil {
		return fmt.Errorf("the document of epoch %d: %w", doc.Epoch, err)
	}
	if doc.Node(ed25519.PublicKey(c.profile.Network.Provider.Identity[:])) == nil {
		return fmt.Errorf("client: your provider %s is not in the network document of epoch %d", c.profile.Network.Provider.Name, doc.Epoch)
	}
	c.next = doc
	c.stats.NextEpoch = doc.Epoch
	c.notify()
	return nil
}

// documentUsable reports whether packets can be built now: a document that
// has not ended beyond the allowed clock skew. c.mu is held.
func (c *Client) documentUsable(now time.Time) bool {
	return c.doc != nil && c.format != nil && !now.After(c.doc.ValidUntil.Add(c.profile.Network.ClockSkew))
}
