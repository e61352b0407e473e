package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the label of backchannel_packets_dropped_total.
const (
	dropTooShort      = "too_short"
	dropVersion       = "bad_version"
	dropLowOrder      = "low_order_point"
	dropMAC           = "bad_mac"
	dropCommand       = "bad_command"
	dropPayloadTag    = "bad_payload_tag"
	dropReplay        = "replay"
	dropNextHop       = "bad_next_hop"
	dropDelayFull     = "delay_queue_full"
	dropQueueOverflow = "queue_overflow"
	dropNoMailbox     = "unknown_recipient"
	dropMailboxQuota  = "mailbox_quota"
	dropMailboxRate   = "mailbox_rate"
	dropInternal      = "internal_error"
	dropDiskFull      = "disk_full"
	dropClientRate    = "client_rate_limit"
	dropShutdown      = "shutdown"
	dropNextHopLeft   = "next_hop_left"
	dropFrameTooSmall = "link_frames_too_small"
	// dropFault counts packets dropped on purpose by a test build's fault
	// switches (see faults_on.go); a release binary never drops for it.
	dropFault = "fault_injected"
)

// metrics are a node's Prometheus metrics, in a registry of its own (no
// global state: several nodes may share a process, as in the demo).
type metrics struct {
	registry     *prometheus.Registry
	packetsIn    prometheus.Counter
	packetsOut   prometheus.Counter
	delivered    prometheus.Counter
	coverDropped prometheus.Counter
	expired      prometheus.Counter
	graceUnwraps prometheus.Counter
	epoch        prometheus.Gauge
	// documentExpired is 1 while the node's document has ended with no
	// successor.
	documentExpired prometheus.Gauge
	// diskFull is 1 while the data directory's file system is full.
	diskFull prometheus.Gauge
	// unreachable counts the next hops the node cannot connect to (see
	// reach.go).
	unreachable   prometheus.Gauge
	dropped       *prometheus.CounterVec
	linkErrors    *prometheus.CounterVec
	links         *prometheus.CounterVec
	delayQueue    prometheus.GaugeFunc
	peerQueued    prometheus.GaugeFunc
	peerUnacked   prometheus.GaugeFunc
	unwrapSeconds prometheus.Histogram
}

func newMetrics(delayLen, queued, unacked func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		packetsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_packets_in_total", Help: "Sphinx packets received on links.",
		}),
		packetsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_packets_out_total", Help: "Sphinx packets forwarded to the next hop.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_packets_delivered_total", Help: "Packets stored in a local mailbox (providers).",
		}),
		graceUnwraps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_grace_unwraps_total", Help: "Packets made with the previous epoch's Sphinx key, taken during the grace period.",
		}),
		documentExpired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_document_expired", Help: "1 while the node's network document has ended and no authority has published a newer one.",
		}),
		diskFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_disk_full", Help: "1 while the node's data directory has no space left: packets to store are refused.",
		}),
		unreachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_next_hops_unreachable", Help: "Next hops this node has failed to connect to three times in a row or more, and not since.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_epoch", Help: "The epoch of the node's current network document.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_mailbox_expired_total", Help: "Unfetched packets removed from mailboxes when their retention ran out (providers).",
		}),
		coverDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "backchannel_cover_dropped_total", Help: "Drop cover packets that reached their end here and were discarded, as meant (providers).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_packets_dropped_total", Help: "Packets dropped, by reason.",
		}, []string{"reason"}),
		linkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_link_errors_total", Help: "Links closed because of an error, by kind.",
		}, []string{"kind"}),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_links_total", Help: "Links established, by link version (1 classical, 2 post-quantum) and direction (in: accepted, out: dialled).",
		}, []string{"version", "direction"}),
		delayQueue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "backchannel_delay_queue_packets", Help: "Packets held for their delay.",
		}, delayLen),
		peerQueued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "backchannel_peer_queue_packets", Help: "Packets waiting in next hops' outgoing queues.",
		}, queued),
		peerUnacked: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "backchannel_peer_unacknowledged_packets", Help: "Packets sent to next hops and not yet acknowledged.",
		}, unacked),
		unwrapSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "backchannel_unwrap_seconds", Help: "Time to unwrap one Sphinx packet.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 10),
		}),
	}
	m.registry.MustRegister(m.packetsIn, m.packetsOut, m.delivered, m.coverDropped, m.expired, m.graceUnwraps, m.epoch, m.documentExpired, m.diskFull, m.unreachable, m.dropped, m.linkErrors, m.links, m.delayQueue, m.peerQueued, m.peerUnacked, m.unwrapSeconds)
	for _, r := range []string{dropTooShort, dropVersion, dropLowOrder, dropMAC, dropCommand, dropPayloadTag, dropReplay,
		dropNextHop, dropDelayFull, dropQueueOverflow, dropNoMailbox, dropMailboxQuota, dropMailboxRate, dropInternal, dropDiskFull, dropClientRate, dropShutdown, dropNextHopLeft} {
		m.dropped.WithLabelValues(r) // export zeros, so "no overflow" is visible
	}
	for _, k := range []string{"handshake", "classical_refused", "handshake_limit", "per_source", "replaced", "idle", "request_rate", "malformed_frame", "slow_reader", "io"} {
		m.linkErrors.WithLabelValues(k)
	}
	for _, v := range []string{"1", "2"} {
		m.links.WithLabelValues(v, "in")
		m.links.WithLabelValues(v, "out")
	}
	return m
}
