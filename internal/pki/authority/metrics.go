package authority

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a node is left out of a document, the label of
// backchannel_authority_left_out_total.
const (
	leftOutSilent   = "silent"   // no descriptor from it lately (freeze)
	leftOutScreened = "screened" // its name or address collides (Screen)
)

// metrics are an authority's Prometheus metrics, in a registry of its own
// (no global state: tests run several authorities in one process).
type metrics struct {
	registry   *prometheus.Registry
	uploads    *prometheus.CounterVec
	frozen     prometheus.Gauge
	leftOut    *prometheus.CounterVec
	peerErrors *prometheus.CounterVec
	voted      prometheus.Gauge
	published  prometheus.Gauge
	signatures prometheus.Gauge
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_authority_uploads_total", Help: "Descriptor uploads, by result: taken or refused.",
		}, []string{"result"}),
		frozen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_authority_frozen_descriptors", Help: "Descriptors in this authority's last frozen set.",
		}),
		leftOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_authority_left_out_total", Help: "Descriptors left out of a frozen set or a vote, by reason: silent (not heard from lately) or screened (a colliding name or address).",
		}, []string{"reason"}),
		peerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backchannel_authority_peer_errors_total", Help: "Failed fetches of a peer's frozen set or vote, by peer URL.",
		}, []string{"peer"}),
		voted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_authority_voted_epoch", Help: "The last epoch this authority signed a document for.",
		}),
		published: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_authority_published_epoch", Help: "The last epoch whose document reached the threshold here.",
		}),
		signatures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backchannel_authority_published_signatures", Help: "Signatures on the last published document.",
		}),
	}
	epoch := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "backchannel_authority_epoch", Help: "The current epoch by this authority's clock.",
	}, func() float64 { return float64(s.Epoch(s.cfg.Clock.Now())) })
	healthy := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "backchannel_authority_healthy", Help: "1 while this authority holds the current epoch's document (see /healthz).",
	}, func() float64 {
		if s.Health() != nil {
			return 0
		}
		return 1
	})
	m.registry.MustRegister(m.uploads, m.frozen, m.leftOut, m.peerErrors, m.voted, m.published, m.signatures, epoch, healthy)
	for _, r := range []string{"taken", "refused"} {
		m.uploads.WithLabelValues(r)
	}
	for _, r := range []string{leftOutSilent, leftOutScreened} {
		m.leftOut.WithLabelValues(r)
	}
	return m
}

// Registry is the authority's metrics registry, for a metrics listener.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// Health is nil while the authority holds the current epoch's published
// document (nodes and clients can fetch it here), and says what is wrong
// otherwise.
func (s *Server) Health() error {
	e := s.Epoch(s.cfg.Clock.Now())
	s.mu.Lock()
	_, ok := s.documents[e]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no published document for the current epoch %d", e)
	}
	return nil
}
