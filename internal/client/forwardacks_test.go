package client_test

import (
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/tools/clienttest"
)

// TestXWingNetworkForwardAcks: on a network of the X-Wing packet format,
// where a SURB (7 KB) does not fit in a packet, two clients set up their
// session and exchange texts and a file; every message is acknowledged, and
// every ack came as a forward packet, none as a SURB reply: at each
// provider, messages, acks and loops arrive in one form. Loops come back.
func TestXWingNetworkForwardAcks(t *testing.T) {
	params := clienttest.FastParameters()
	params.Geometry.Scheme = sphinx.XWing
	alice, bob := runningPair(t, params)

	const each = 3
	file := exchangeTexts(t, alice, bob, each, 8<<10)
	for _, c := range []*client.Client{alice, bob} {
		clienttest.WaitUntil(t, c, time.Minute, "a loop back", func() bool { return c.Stats().LoopsReturned > 0 })
	}
	checkInbox(t, bob, "alice to bob", each, file)
	checkInbox(t, alice, "bob to alice", each, nil)
	for name, c := range map[string]*client.Client{"alice": alice, "bob": bob} {
		s := c.Stats()
		t.Logf("%s: %+v", name, s)
		if s.AcksReceived == 0 || s.SURBAcks != 0 {
			t.Fatalf("%s received %d acks, %d of them SURB replies; want some, none", name, s.AcksReceived, s.SURBAcks)
		}
	}
}
