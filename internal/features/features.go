// Package features registers backchannel's features with a client: what
// makes it a backchannel rather than a messenger. Each feature is a
// package of its own beside this one (intro, convey, interest, expiry),
// with its wire format, its state in the vault and its operations; the
// client hands it the messages of its content kinds (client.Feature).
//
// A new feature is its own package and one line in Register.
package features

import (
	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/expiry"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/features/intro"
)

// Set is the features of one client, for the operations that ask them
// (the control socket, the demo).
type Set struct {
	Intro    *intro.Feature
	Convey   *convey.Feature
	Interest *interest.Feature
	Expiry   *expiry.Feature
}

// Config configures the features.
type Config struct {
	// MaxChecksPerDay limits the mutual interest checks a contact may ask
	// in a day; zero takes interest.DefaultMaxPerDay.
	MaxChecksPerDay int
}

// Register registers every feature with the client; call it after Open
// or Create, before Run.
func Register(c *client.Client, cfg Config) (*Set, error) {
	var s Set
	var err error
	if s.Intro, err = intro.New(c); err != nil {
		return nil, err
	}
	if s.Convey, err = convey.New(c); err != nil {
		return nil, err
	}
	if s.Interest, err = interest.New(c, cfg.MaxChecksPerDay); err != nil {
		return nil, err
	}
	if s.Expiry, err = expiry.New(c); err != nil {
		return nil, err
	}
	return &s, nil
}
