// Package readiness lets a harness that starts backchannel's servers as
// processes wait for them to say they serve: the servers notify readiness
// as systemd's Type=notify services do ("READY=1" sent to $NOTIFY_SOCKET,
// through github.com/coreos/go-systemd), and a Socket receives it. A typed
// signal, where a log line is for people and may change.
//
// It is for tools and tests (loadgen, the end-to-end tests); the servers
// themselves only send.
package readiness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Socket receives the notifications of one process.
type Socket struct {
	conn *net.UnixConn
	name string
}

// Listen opens a socket in Linux's abstract namespace (no file to clean up,
// no path length to mind), with a random name.
func Listen() (*Socket, error) {
	var b [12]byte
	rand.Read(b[:])
	name := "@backchannel-ready-" + hex.EncodeToString(b[:])
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("readiness: listening on %s: %w", name, err)
	}
	return &Socket{conn: conn, name: name}, nil
}

// Env is the environment variable that points a process at the socket.
func (s *Socket) Env() string { return "NOTIFY_SOCKET=" + s.name }

// ErrTimeout: no readiness arrived in time.
var ErrTimeout = errors.New("readiness: no READY=1 in time")

// Wait returns once the process has sent READY=1, or ErrTimeout after
// timeout. Other notifications (STATUS=…, STOPPING=1) are skipped.
func (s *Socket) Wait(timeout time.Duration) error {
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w (%v)", ErrTimeout, timeout)
		}
		if err != nil {
			return fmt.Errorf("readiness: %w", err)
		}
		for line := range strings.SplitSeq(string(buf[:n]), "\n") {
			if line == "READY=1" {
				return nil
			}
		}
	}
}

// Close closes the socket.
func (s *Socket) Close() error { return s.conn.Close() }
