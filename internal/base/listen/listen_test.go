package listen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// attacker dials from 127.0.0.2, another source than the test's own
// requests (127.0.0.1), on every Linux loopback.
var attacker = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}

// TestSlowClientsDoNotStopHTTP: one source opens ten times more
// connections than the listener's total cap, half of them sending their
// header slowly and half a long body slowly, and holds them; GETs from
// another source are still answered at once. Without the cap per source,
// the slow connections take every slot of the total and the GETs wait
// behind them in the kernel's queue (checked by setting PerSource to 0).
func TestSlowClientsDoNotStopHTTP(t *testing.T) {
	limits := Limits{Total: 32, PerSource: 8}
	var refused atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /doc", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "document") })
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	})
	srv := NewHTTPServer(mux, 4096)
	go srv.Serve(Limit(ln, limits, func(string) { refused.Add(1) }))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	const slow = 10 * 32
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range slow {
		c, err := attacker.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		if i%2 == 0 {
			fmt.Fprintf(c, "GET /doc HTTP/1.1\r\nHost: x\r\n") // the header never ends
		} else {
			fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nab") // the body never comes
		}
	}

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 20 {
		resp, err := client.Get("http://" + addr + "/doc")
		if err != nil {
			t.Fatalf("GET %d behind %d slow connections: %v", i, slow, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "document" {
			t.Fatalf("GET %d: %q", i, body)
		}
	}
	if got := refused.Load(); got == 0 {
		t.Fatal("no connection was refused for its source's cap")
	}
	t.Logf("%d of %d slow connections refused at once", refused.Load(), slow)
}

// TestBodyLimit: a body over the limit fails its read.
func TestBodyLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	}), 100)
	go srv.Serve(Limit(ln, Limits{Total: 4, PerSource: 4}, nil))
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n%0200d", 0)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 200-byte body with a 100-byte limit: %s", resp.Status)
	}
}

// TestPerSourceCount: a source's slots come back when its connections
// close, once each however often Close is called.
func TestPerSourceCount(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ln := Limit(raw, Limits{PerSource: 2}, nil)
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// refused checks that the listener closed c at once (EOF or reset),
	// not that it holds it (a read that times out).
	refused := func(c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
			t.Fatalf("a connection over its source's cap was served (%v)", err)
		}
	}
	dial()
	dial()
	a, b := <-accepted, <-accepted
	refused(dial())
	a.Close()
	a.Close() // a second Close frees nothing more
	dial()
	<-accepted
	refused(dial())
	b.Close()
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a slot freed by Close was not given back")
	}
}
