package node

import (
	"errors"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/relay/replay"
)

// job is a packet received on a link, with its frame number there.
type job struct {
	packet []byte
	from   *inbound
	seq    uint64
}

// result is a worker's verdict on a job: forward it after a delay, store
// it in a mailbox, or nothing more to do (dropped). Either way its frame
// is acknowledged once the replay log is synced.
type result struct {
	job
	epoch   *epochState // whose replay filter holds the packet's tag
	forward bool
	next    sphinx.NodeID
	delay   time.Duration
	// store, at a provider, is the delivery for a mailbox, which the
	// committer stores with the rest of its batch before logging tag.
	store *mailbox.Delivery
	tag   [sphinx.ReplayTagLength]byte
	// taken is when a worker took the packet: a forward is due at
	// taken + delay.
	taken time.Time
}

// due is when the result's packet must leave: a forward at the end of its
// delay, anything else (stored, dropped: its frame is acknowledged) at once.
func (r *result) due() time.Time {
	if r.forward {
		return r.taken.Add(r.delay)
	}
	return r.taken
}

// work unwraps packets until jobs is closed.
func (n *Node) work() {
	for j := range n.jobs {
		n.results <- n.process(j)
	}
}

func (n *Node) process(j job) result {
	r := result{job: j, taken: n.cfg.Clock.Now()}
	start := time.Now()
	es := n.epochs.Load()
	n.faults.recordHandled(j.packet)
	res, e, err := n.unwrap(es, j.packet)
	r.epoch = e
	n.metrics.unwrapSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		n.metrics.dropped.WithLabelValues(unwrapDropReason(err)).Inc()
		return r
	}
	// The tag is reserved in memory now and logged below once the packet
	// is dealt with (after storing it, at a provider), so that a tag never
	// becomes durable before the packet it stands for.
	seen, err := e.replay.Reserve(res.ReplayTag)
	if err != nil {
		n.log.Error("replay filter failed", "err", err)
		n.metrics.dropped.WithLabelValues(dropInternal).Inc()
		return r
	}
	if seen {
		n.metrics.dropped.WithLabelValues(dropReplay).Inc()
		return r
	}
	if n.faults.drop() {
		n.metrics.dropped.WithLabelValues(dropFault).Inc()
		n.record(e, res.ReplayTag)
		return r
	}
	if next, ok := res.Commands.NextHop(); ok {
		node := n.nodeByID(next.ID)
		if node == nil || !n.nextHopAllowed(node) {
			n.metrics.dropped.WithLabelValues(dropNextHop).Inc()
			return r
		}
		r.forward, r.next = true, next.ID
		if d, ok := res.Commands.Delay(); ok {
			r.delay = d.Duration()
		}
		r.delay += n.faults.extraDelay()
		n.record(e, res.ReplayTag)
		return r
	}
	rcpt, ok := res.Commands.Recipient()
	if n.provider == nil || !ok {
		n.metrics.dropped.WithLabelValues(dropNextHop).Inc()
		return r
	}
	id := mailbox.ID(rcpt.ID)
	if id == mailbox.ID(directory.DropRecipient) {
		n.metrics.coverDropped.Inc()
		n.record(e, res.ReplayTag)
		return r
	}
	if !n.provider.accounts.HasMailbox(id) {
		n.metrics.dropped.WithLabelValues(dropNoMailbox).Inc()
		return r
	}
	// The committer stores the packet, with the others of its batch in
	// one transaction, before its tag is logged: a crash in between can
	// store a retransmitted copy twice, never lose one (the client
	// delivers each message once).
	d := wire.Delivery{Payload: res.Payload}
	if reply, ok := res.Commands.SURBReply(); ok {
		d.SURBID = &reply.ID
	}
	record, err := d.MarshalBinary()
	if err != nil {
		n.metrics.dropped.WithLabelValues(dropInternal).Inc()
		return r
	}
	r.store, r.tag = &mailbox.Delivery{Mailbox: id, Packet: record}, res.ReplayTag
	return r
}

// unwrap unwraps a packet with the current epoch's key, or, during the
// grace period after a change, with the previous epoch's: a packet made
// before the change. A packet of the previous epoch's format (its length
// says so, after the network changed format) is tried with that key only.
func (n *Node) unwrap(es *epochs, packet []byte) (sphinx.Unwrapped, *epochState, error) {
	cur, prev := es.cur, es.prev
	inGrace := prev != nil && n.cfg.Clock.Now().Before(prev.graceUntil)
	length := len(packet)
	if inGrace && length != cur.format.Geometry().PacketLength() && length == prev.format.Geometry().PacketLength() {
		res, err := prev.format.Unwrap(prev.key, packet)
		if err == nil {
			n.metrics.graceUnwraps.Inc()
		}
		return res, prev, err
	}
	res, err := cur.format.Unwrap(cur.key, packet)
	if errors.Is(err, sphinx.ErrMAC) && inGrace && prev.format.Geometry() == cur.format.Geometry() {
		if again, perr := prev.format.Unwrap(prev.key, packet); perr == nil {
			n.metrics.graceUnwraps.Inc()
			return again, prev, nil
		}
	}
	return res, cur, err
}

// storeBatch stores the batch's deliveries in one transaction, then logs
// the tags of those stored. A packet not stored is dropped (and counted);
// its frame is acknowledged all the same, as for any drop. It reports
// whether the store failed.
func (n *Node) storeBatch(batch []result) (failed bool) {
	var deliveries []mailbox.Delivery
	var stored []*result
	for i := range batch {
		if batch[i].store != nil {
			if !n.provider.takeInto(batch[i].store.Mailbox) {
				n.metrics.dropped.WithLabelValues(dropMailboxRate).Inc()
				continue
			}
			deliveries = append(deliveries, *batch[i].store)
			stored = append(stored, &batch[i])
		}
	}
	if len(deliveries) == 0 {
		return false
	}
	n.faults.recordStored(deliveries)
	errs, err := n.provider.mailbox.PutMany(deliveries, n.cfg.Clock.Now())
	if err != nil {
		reason := n.disk.writeFailed(writeMailboxes, err)
		n.metrics.dropped.WithLabelValues(reason).Add(float64(len(deliveries)))
		return true
	}
	for i, r := range stored {
		if errs[i] != nil {
			n.metrics.dropped.WithLabelValues(dropMailboxQuota).Inc()
			continue
		}
		n.metrics.delivered.Inc()
		n.record(r.epoch, r.tag)
	}
	return false
}

// record logs a reserved replay tag; the committer syncs the log before the
// packet's frame is acknowledged.
func (n *Node) record(e *epochState, tag [sphinx.ReplayTagLength]byte) {
	if err := e.replay.Record(tag); err != nil && !errors.Is(err, replay.ErrClosed) {
		n.log.Error("replay log write failed", "err", err)
	}
}

func unwrapDropReason(err error) string {
	switch {
	case errors.Is(err, sphinx.ErrPacketTooShort):
		return dropTooShort
	case errors.Is(err, sphinx.ErrVersion):
		return dropVersion
	case errors.Is(err, sphinx.ErrLowOrderPoint):
		return dropLowOrder
	case errors.Is(err, sphinx.ErrMAC):
		return dropMAC
	case errors.Is(err, sphinx.ErrCommand):
		return dropCommand
	case errors.Is(err, sphinx.ErrPayloadTag):
		return dropPayloadTag
	}
	return dropInternal
}

// Group commit. An fsync of the replay log costs the same for one tag as
// for a thousand (about a third of a millisecond of CPU on an ext4 disk), so
// the committer syncs once for as many packets as it can without making one
// late: it waits until the first packet of the batch that must leave is due
// (a forward at the end of its mix delay, counted from when it was taken;
// a packet to store or drop at once), at most maxSyncWait, and at least
// minSyncInterval after the last sync, taking what arrives meanwhile. A
// forward is then scheduled at taken + delay, so its delay is what its
// sender chose, not that plus the commit's wait. Under load and with delays
// zero this is the group commit of every 2 ms; at 100 packets a second with
// the default 50 ms delays, several packets share an fsync where each had
// its own.
const (
	// minSyncInterval is the shortest time between two syncs.
	minSyncInterval = 2 * time.Millisecond
	// maxSyncWait bounds how long a packet's acknowledgement to the
	// previous hop waits for a sync, whatever its delay.
	maxSyncWait = 50 * time.Millisecond
)

// commit takes workers' results in batches: it syncs the replay log once per
// batch, then acknowledges the batch's frames and schedules its forwards.
// Nothing is forwarded or acknowledged before its replay tag is durable, so
// a restarted node still refuses it. It returns when results is closed.
func (n *Node) commit() {
	var batch []result
	var lastSync time.Time
	for {
		batch = batch[:0]
		r, ok := <-n.results
		if !ok {
			return
		}
		batch = append(batch, r)
		batch, ok = n.gather(batch, lastSync)
		lastSync = n.cfg.Clock.Now()
		n.commitBatch(batch)
		if !ok {
			return
		}
	}
}

// gather adds to batch the results that arrive until the batch must be
// synced (see maxSyncWait), then those already waiting; ok is false once
// results is closed.
func (n *Node) gather(batch []result, lastSync time.Time) ([]result, bool) {
	until := earliest(batch[0].due(), batch[0].taken.Add(maxSyncWait))
	var t clock.Timer // fires at timerAt
	var timerAt time.Time
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		now := n.cfg.Clock.Now()
		if !now.Before(until) {
			// Due: only the interval since the last sync is waited out,
			// and what arrives meanwhile is taken below, all at once.
			if next := lastSync.Add(minSyncInterval); now.Before(next) {
				w := n.cfg.Clock.NewTimerAt(next)
				<-w.C()
			}
			break
		}
		if t == nil || !timerAt.Equal(until) {
			if t != nil {
				t.Stop()
			}
			t, timerAt = n.cfg.Clock.NewTimerAt(until), until
		}
		select {
		case r, ok := <-n.results:
			if !ok {
				return batch, false
			}
			batch = append(batch, r)
			until = earliest(until, r.due())
		case <-t.C():
			t = nil
		}
	}
	for len(batch) < cap(n.results) {
		select {
		case r, ok := <-n.results:
			if !ok {
				return batch, false
			}
			batch = append(batch, r)
		default:
			return batch, true
		}
	}
	return batch, true
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// commitBatch stores the batch's deliveries, syncs the replay log, then
// acknowledges the batch's frames and schedules its forwards.
func (n *Node) commitBatch(batch []result) {
	storeFailed := n.storeBatch(batch)
	if err := n.syncReplay(); err != nil {
		// Without a durable log the node could forward a replay after
		// a restart: stop acknowledging, so the previous hops keep
		// the packets, and say so.
		n.disk.writeFailed(writeReplayLog, err)
		return
	}
	if !storeFailed {
		n.disk.writeWorked()
	}
	now := n.cfg.Clock.Now()
	links := map[*inbound]struct{}{}
	for _, r := range batch {
		if r.forward {
			f := forward{packet: r.packet, next: r.next}
			if due := r.due(); due.After(now) {
				if !n.delayQ.Push(f, due) {
					n.metrics.dropped.WithLabelValues(dropDelayFull).Inc()
				}
			} else {
				n.route(f)
			}
		}
		r.from.acks.Complete(r.seq)
		links[r.from] = struct{}{}
	}
	for l := range links {
		l.acks.Acknowledge()
	}
}

// syncReplay syncs the replay filters of the epochs held. A filter that
// an epoch change closed meanwhile needs no sync: its epoch's key is wiped,
// so no packet of that epoch can be unwrapped again, replayed or not.
func (n *Node) syncReplay() error {
	for _, e := range n.epochs.Load().all() {
		if err := e.replay.Sync(); err != nil && !errors.Is(err, replay.ErrClosed) {
			return err
		}
	}
	return nil
}
