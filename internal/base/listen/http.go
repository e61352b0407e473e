package listen

import (
	"net/http"
	"time"
)

// The daemons' HTTP servers' limits. A connection that sends its header
// or body slowly holds a slot of the listener's caps for at most
// HTTPReadTimeout; one that reads its reply slowly, for HTTPWriteTimeout
// (long enough for a 30-second profile from the metrics listener's pprof);
// an idle keep-alive connection, for HTTPIdleTimeout.
const (
	HTTPHeaderTimeout = 5 * time.Second
	HTTPReadTimeout   = 10 * time.Second
	HTTPWriteTimeout  = 60 * time.Second
	HTTPIdleTimeout   = 30 * time.Second
	HTTPMaxHeader     = 16 << 10
)

// NewHTTPServer returns an HTTP server for handler with the limits above
// and request bodies bounded to maxBody bytes (a longer body fails its
// read, and the handler answers with an error). Serve it on a listener
// from Limit.
func NewHTTPServer(handler http.Handler, maxBody int64) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(handler, maxBody),
		ReadHeaderTimeout: HTTPHeaderTimeout,
		ReadTimeout:       HTTPReadTimeout,
		WriteTimeout:      HTTPWriteTimeout,
		IdleTimeout:       HTTPIdleTimeout,
		MaxHeaderBytes:    HTTPMaxHeader,
	}
}
