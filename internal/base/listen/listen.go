// Package listen opens what the daemons listen on so that one peer cannot
// take it from the others: a TCP listener that holds a bounded number of
// connections, in all and from any one source, and an HTTP server with
// timeouts and a body limit on top of one.
//
// It is not a rate limiter (a source may open and close connections as
// fast as it likes, within its cap) and not a firewall: a flood from many
// addresses can still fill the total cap, and then new connections wait
// for a free slot (see [Limit]).
package listen

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/netutil"
)

// Limits bound the connections a listener holds open.
type Limits struct {
	// Total is how many connections may be open at once; beyond it Accept
	// waits until one closes (0: no cap).
	Total int
	// PerSource is how many connections one source may have open at
	// once; beyond it a new connection from that source is closed as soon
	// as it is accepted (0: no cap). A source is an IPv4 address or an
	// IPv6 /64, what one host (or one network behind a NAT) usually holds.
	PerSource int
}

// Limit wraps ln so that it holds connections within limits. refused, if
// not nil, is called (from Accept) each time a connection is closed for
// its source's cap, with the reason "per_source", for the metrics.
//
// The total cap is golang.org/x/net/netutil's LimitListener, which makes
// Accept wait for a free slot rather than refuse: a connection beyond the
// cap waits in the kernel's queue instead of being turned away, and is
// served as soon as a held one ends (header and handshake deadlines bound
// how long that is). The cap per source is checked before a connection
// takes a slot of the total, so one source cannot fill the total.
func Limit(ln net.Listener, limits Limits, refused func(reason string)) net.Listener {
	if limits.PerSource > 0 {
		ln = &perSource{Listener: ln, max: limits.PerSource, open: map[netip.Prefix]int{}, refused: refused}
	}
	if limits.Total > 0 {
		ln = netutil.LimitListener(ln, limits.Total)
	}
	return ln
}

// perSource closes at once each connection whose source already has max
// open; the others are counted until they close.
type perSource struct {
	net.Listener
	max     int
	refused func(string)

	mu   sync.Mutex
	open map[netip.Prefix]int
}

func (l *perSource) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src, ok := source(c.RemoteAddr())
		if !ok {
			// Not an IP connection (a Unix socket in tests): uncounted.
			return c, nil
		}
		l.mu.Lock()
		admitted := l.open[src] < l.max
		if admitted {
			l.open[src]++
		}
		l.mu.Unlock()
		if admitted {
			return &countedConn{Conn: c, release: func() { l.release(src) }}, nil
		}
		c.Close()
		if l.refused != nil {
			l.refused("per_source")
		}
	}
}

func (l *perSource) release(src netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

// source is the prefix a connection's remote address counts under.
func source(a net.Addr) (netip.Prefix, bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// countedConn releases its source's count once, on its first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
