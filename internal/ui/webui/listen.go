package webui

import (
	"fmt"
	"net"
	"net/netip"
)

// Listen listens on addr, which must be a loopback address and a port
// (127.0.0.1:0 picks a free port); "localhost" is taken as 127.0.0.1
// without asking a resolver, since a resolver may say otherwise.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("webui: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("webui: the interface listens on a loopback address only (127.0.0.1 or ::1), not %q", addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	if !isLoopback(ln.Addr()) {
		ln.Close()
		return nil, fmt.Errorf("webui: bound to %v, which is not a loopback address", ln.Addr())
	}
	return ln, nil
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
