package authority

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// MaxUpload is the longest body POST /v1/descriptor reads: a descriptor
// is at most a few hundred bytes.
const MaxUpload = 4096

// refusedUpload logs a refused upload, at most one a second (with a burst
// of ten): the reasons name the node, so that an operator sees which one
// is misconfigured or hostile, and a flood of refusals does not flood the
// log (how many went unlogged is said with the next one logged).
func (s *Server) refusedUpload(err error) {
	if !s.refusals.Allow() {
		s.unlogged.Add(1)
		return
	}
	s.log.Warn("a descriptor upload was refused", "err", err, "unlogged_before", s.unlogged.Swap(0))
}

// Handler is the authority's HTTP API:
//
//	POST /v1/descriptor          a node's signed descriptor for the next epoch
//	GET  /v1/descriptors/{epoch} this authority's frozen bundle (for peers)
//	GET  /v1/vote/{epoch}        this authority's signed document (for peers)
//	GET  /v1/document/{epoch}    the published document of an epoch
//	GET  /v1/document/current    the published document of the current epoch
//	GET  /v1/document/next       the published document of the next epoch
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/descriptor", func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUpload))
		if err == nil {
			err = s.Upload(raw)
		} else {
			s.metrics.uploads.WithLabelValues("refused").Inc() // Upload counts the others
		}
		if err != nil {
			s.refusedUpload(err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	serve := func(m func() map[uint64][]byte, what string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var e uint64
			switch v := r.PathValue("epoch"); {
			case v == "current":
				e = s.Epoch(s.cfg.Clock.Now())
			case v == "next":
				e = s.Epoch(s.cfg.Clock.Now()) + 1
			default:
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					http.Error(w, fmt.Sprintf("%q is not an epoch", v), http.StatusBadRequest)
					return
				}
				e = n
			}
			s.mu.Lock()
			b, ok := m()[e]
			s.mu.Unlock()
			if !ok {
				http.Error(w, fmt.Sprintf("no %s for epoch %d (yet)", what, e), http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /v1/descriptors/{epoch}", serve(func() map[uint64][]byte { return s.frozen }, "frozen descriptors"))
	mux.HandleFunc("GET /v1/vote/{epoch}", serve(func() map[uint64][]byte { return s.votes }, "vote"))
	mux.HandleFunc("GET /v1/document/{epoch}", serve(func() map[uint64][]byte { return s.documents }, "document"))
	return mux
}
