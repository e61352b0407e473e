package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// output is a process's output: written to its log file, and kept as lines
// that a test can wait for, so that tests wait for what a process says it
// did (it is running, it published, it expired) instead of polling.
type output struct {
	file *os.File

	mu      sync.Mutex
	lines   []string      // guarded by mu
	partial []byte        // guarded by mu
	added   chan struct{} // closed and replaced when a line is added; guarded by mu
}

// newOutput appends to the log file at path.
func newOutput(path string) (*output, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &output{file: f, added: make(chan struct{})}, nil
}

func (o *output) Write(p []byte) (int, error) {
	o.file.Write(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, string(o.partial[:i]))
		o.partial = o.partial[i+1:]
		close(o.added)
		o.added = make(chan struct{})
	}
	return len(p), nil
}

// mark returns how many lines there are, for waitFor to look only at
// lines after it.
func (o *output) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines)
}

// waitFor waits until a line after mark contains every one of parts.
func (o *output) waitFor(mark int, timeout time.Duration, parts ...string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		lines, added := o.lines[mark:], o.added
		o.mu.Unlock()
	lines:
		for _, line := range lines {
			for _, p := range parts {
				if !strings.Contains(line, p) {
					continue lines
				}
			}
			return nil
		}
		select {
		case <-added:
		case <-deadline.C:
			return fmt.Errorf("no line with %q in %v", parts, timeout)
		}
	}
}

// waitCounter waits until a node's counter reaches min. A node announces
// no such event, so its metrics endpoint is read every few milliseconds,
// for at most 30 seconds.
func waitCounter(t testing.TB, nw *network, node, name string, min float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for nw.counter(name, "", node) < min {
		if time.Now().After(deadline) {
			t.Fatalf("%s's %s stayed under %v", node, name, min)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
