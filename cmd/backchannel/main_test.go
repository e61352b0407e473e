package main

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// lastWrite is a writer that remembers when it was last written to.
type lastWrite struct {
	mu sync.Mutex
	w  io.Writer
	at time.Time
}

func (l *lastWrite) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = time.Now()
	return l.w.Write(p)
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string
		stderrPart string
	}{
		{args: nil, code: 2, stderrPart: "Usage: backchannel"},
		{args: []string{"version"}, code: 0, stdout: "backchannel "},
		{args: []string{"help"}, code: 0, stdout: "Usage: backchannel"},
		{args: []string{"frobnicate"}, code: 2, stderrPart: `unknown command "frobnicate"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("run(%q) = %d, want %d", tc.args, code, tc.code)
		}
		if !strings.HasPrefix(stdout.String(), tc.stdout) {
			t.Errorf("run(%q) stdout = %q, want prefix %q", tc.args, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stderr.String(), tc.stderrPart) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.stderrPart)
		}
	}
}

// TestDemo runs the demo's story end to end on a whole network on loopback:
// introduction, mutual interest check, signal and answer, a conveyed
// message with a signed receipt. The demo must end soon after its last
// line: it once waited 10 s for its nodes to drain to next hops that were
// stopping too. (2 s is the figure for the built binary; under the race
// detector on a loaded machine this allows more.)
func TestDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	out := &lastWrite{w: &stdout}
	if code := run([]string{"demo", "-within", "10s"}, out, &stderr); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	if wait := time.Since(out.at); wait > 5*time.Second {
		t.Errorf("the demo exited %v after its last line", wait)
	}
	if !strings.Contains(stdout.String(), "done: every step succeeded") || !strings.Contains(stdout.String(), "alice learns: match: both said yes") {
		t.Fatalf("demo output:\n%s", stdout.String())
	}
}
