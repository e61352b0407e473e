package authority

import (
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// FormatChange is a change of the network's packet format from an epoch on.
type FormatChange struct {
	Epoch  uint64
	Scheme sphinx.Scheme
}

// parameters are the network parameters of epoch e's document.
func (c *Config) parameters(e uint64) directory.Parameters {
	p := c.Parameters
	if c.FormatChange != nil && e >= c.FormatChange.Epoch {
		p.Geometry.Scheme = c.FormatChange.Scheme
	}
	return p
}
