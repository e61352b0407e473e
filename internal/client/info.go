package client

import (
	"errors"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// NetworkInfo describes the network document the client uses, for a status
// display: the cover-traffic rates it follows and the mixing it gets.
type NetworkInfo struct {
	Epoch      uint64
	ValidUntil time.Time
	// Layers is the number of mix layers; MixesPerLayer the fewest mixes
	// any layer has (the smallest crowd a packet hides in).
	Layers, MixesPerLayer int
	// MeanDelay is the mean delay per hop; SendRate, LoopRate and
	// DropRate the client's Poisson rates per second; PollInterval how
	// often it fetches its mailbox.
	MeanDelay                    time.Duration
	SendRate, LoopRate, DropRate float64
	PollInterval                 time.Duration
	// PacketSize is the size of every Sphinx packet in bytes.
	PacketSize int
}

// NetworkInfo returns the current document's description; false before the
// client has a document.
func (c *Client) NetworkInfo() (NetworkInfo, bool) {
	if n := c.view.Load().network; n != nil {
		return *n, true
	}
	return NetworkInfo{}, false
}

// networkInfo describes the current document, or is nil; c.mu is held.
func (c *Client) networkInfo() *NetworkInfo {
	d := c.doc
	if d == nil {
		return nil
	}
	p := d.Parameters
	perLayer := make(map[uint8]int)
	for _, n := range d.Nodes {
		if n.Role == directory.RoleMix {
			perLayer[n.Layer]++
		}
	}
	fewest := 0
	for l := uint8(1); l <= p.Layers; l++ {
		if fewest == 0 || perLayer[l] < fewest {
			fewest = perLayer[l]
		}
	}
	return &NetworkInfo{
		Epoch: d.Epoch, ValidUntil: d.ValidUntil,
		Layers: int(p.Layers), MixesPerLayer: fewest,
		MeanDelay: p.MeanDelay, SendRate: p.SendRate, LoopRate: p.LoopRate, DropRate: p.DropRate,
		PollInterval: p.PollInterval, PacketSize: p.Geometry.PacketLength(),
	}
}

// ErrWrongPassphrase: the passphrase does not open the state.
var ErrWrongPassphrase = errors.New("client: that passphrase does not open this state")

// CheckPassphrase reports whether passphrase opens the client's state, as
// a screen lock asks: it unwraps the state key from the header on disk
// (the whole passphrase hash) and forgets it again.
func (c *Client) CheckPassphrase(passphrase []byte) error {
	_, err := c.OfficerOf(passphrase)
	return err
}

// OfficerOf names the officer whose passphrase it is (ErrWrongPassphrase
// if none's), unwrapping the state key as CheckPassphrase does.
func (c *Client) OfficerOf(passphrase []byte) (string, error) {
	id, err := c.store.dir.CheckPassphrase(c.cfg.Rand, passphrase)
	if errors.Is(err, vault.ErrPassphrase) {
		return "", ErrWrongPassphrase
	}
	if err != nil {
		return "", err
	}
	c.omu.Lock()
	defer c.omu.Unlock()
	o := c.officerBySlot(id)
	if o == nil {
		return "", ErrWrongPassphrase // a slot being removed
	}
	return o.Name, nil
}
