package node

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// DefaultLinksPerUser is Config.LinksPerUser's default: a client keeps one
// link, and a few more cover reconnections and a second device.
const DefaultLinksPerUser = 4

// user is what a provider keeps for one of its users: the rate limits
// shared by all its links, and the links themselves, oldest first.
type user struct {
	packets  *rate.Limiter // the packets it sends into the network
	requests *rate.Limiter // its fetches, retention changes and document requests
	links    []*inbound
}

// userLimits are the rates a provider holds its users and their mailboxes
// to, derived from the document's client rates so that a client that
// keeps to the document never meets them:
//
//   - packets: twice what the document asks of a client (send slots, loops
//     and drops), with ten seconds' worth as a burst (at least 20), unless
//     Config.ClientPacketRate and ClientPacketBurst say otherwise;
//   - requests: twice the fastest fetching (wire.MaxFetchesPerPoll a poll
//     interval) plus one a second for retention and document requests,
//     with ten seconds' worth as a burst;
//   - mailbox: what one mailbox takes in, from everyone: half what its
//     client drains at its fastest (wire.FetchBatch × MaxFetchesPerPoll
//     a poll interval), so that a backlog empties at least as fast as a
//     flood can add to it, with ten seconds' worth as a burst. The provider
//     cannot tell a flooder's packets from a contact's (Sphinx hides the
//     sender); what it drops is counted (dropMailboxRate) and the senders'
//     clients send again what goes unacknowledged.
//
// The limits are set when a user is first seen, from the document then
// current.
type userLimits struct {
	packetRate, requestRate, mailboxRate    rate.Limit
	packetBurst, requestBurst, mailboxBurst int
}

func limitsFor(p directory.Parameters, cfg Config) userLimits {
	poll := max(p.PollInterval, time.Millisecond).Seconds()
	drain := float64(wire.FetchBatch*wire.MaxFetchesPerPoll) / poll
	l := userLimits{
		packetRate:  rate.Limit(max(2*(p.SendRate+p.LoopRate+p.DropRate), 1)),
		requestRate: rate.Limit(2*wire.MaxFetchesPerPoll/poll + 1),
		mailboxRate: rate.Limit(drain / 2),
	}
	if cfg.ClientPacketRate > 0 {
		l.packetRate = rate.Limit(cfg.ClientPacketRate)
	}
	burst := func(r rate.Limit, least int) int { return max(int(10*float64(r)), least) }
	l.packetBurst, l.requestBurst, l.mailboxBurst = burst(l.packetRate, 20), burst(l.requestRate, 20), burst(l.mailboxRate, 4*wire.FetchBatch)
	if cfg.ClientPacketBurst > 0 {
		l.packetBurst = cfg.ClientPacketBurst
	}
	return l
}

// user returns the state of the user with mailbox box, made on first use;
// p.usersMu is held.
func (p *provider) userLocked(box mailbox.ID) *user {
	if u, ok := p.users[box]; ok {
		return u
	}
	l := limitsFor(p.n.epochs.Load().cur.doc.Parameters, p.n.cfg)
	u := &user{packets: rate.NewLimiter(l.packetRate, l.packetBurst), requests: rate.NewLimiter(l.requestRate, l.requestBurst)}
	p.users[box] = u
	return u
}

// addLink counts a user's new link; if the user already holds as many as
// Config.LinksPerUser, the oldest is closed (a half-open link its client
// forgot must not lock the user out) and returned.
func (p *provider) addLink(l *inbound) (evicted *inbound) {
	p.usersMu.Lock()
	defer p.usersMu.Unlock()
	u := p.userLocked(l.box)
	l.user = u
	if len(u.links) >= p.n.cfg.LinksPerUser {
		evicted, u.links = u.links[0], u.links[1:]
	}
	u.links = append(u.links, l)
	return evicted
}

// removeLink forgets a user's closed link.
func (p *provider) removeLink(l *inbound) {
	p.usersMu.Lock()
	defer p.usersMu.Unlock()
	u := p.users[l.box]
	if u == nil {
		return
	}
	for i, held := range u.links {
		if held == l {
			u.links = append(u.links[:i], u.links[i+1:]...)
			break
		}
	}
}

// takeInto reports whether the mailbox box takes one more packet now
// under its rate (see userLimits); the committer calls it for each packet
// it would store.
func (p *provider) takeInto(box mailbox.ID) bool {
	p.usersMu.Lock()
	defer p.usersMu.Unlock()
	in, ok := p.inflow[box]
	if !ok {
		l := limitsFor(p.n.epochs.Load().cur.doc.Parameters, p.n.cfg)
		in = rate.NewLimiter(l.mailboxRate, l.mailboxBurst)
		p.inflow[box] = in
	}
	return in.Allow()
}
