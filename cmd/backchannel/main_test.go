package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/tools/testrand"
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

// nowhere is a directory with no client state.
var nowhere = filepath.Join(os.TempDir(), "backchannel-test-no-state")

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
		// A command on a directory with no client state says to make one,
		// not to start a daemon that could not start.
		{args: []string{"status", "--dir", nowhere}, code: 1, stderrPart: "make one with `backchannel init --dir " + nowhere},
		{args: []string{"inbox", "--dir", nowhere}, code: 1, stderrPart: "no client state at " + nowhere},
		{args: []string{"client", "run", "--dir", nowhere}, code: 1, stderrPart: "make one with `backchannel init --dir " + nowhere},
		// The commands that run without a daemon have a usage of their own.
		{args: []string{"restore", "-h"}, code: 2, stderrPart: "usage: backchannel restore [--dir DIR] FILE"},
		{args: []string{"init", "-h"}, code: 2, stderrPart: "usage: backchannel init --network FILE --provider NAME"},
		{args: []string{"client", "run", "-h"}, code: 2, stderrPart: "usage: backchannel client run"},
		{args: []string{"ui", "-h"}, code: 2, stderrPart: "usage: backchannel ui"},
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

// TestEveryCommandsHelp: every command line of the table (the control
// protocol's included) is a command of this binary, listed by the
// top-level usage, whose -h prints its usage line with the arguments it
// takes, and every flag it has is described.
func TestEveryCommandsHelp(t *testing.T) {
	var top bytes.Buffer
	run([]string{"help"}, &top, io.Discard)
	for _, c := range commands() {
		if !strings.Contains(top.String(), strings.TrimSpace(c.cli+" "+c.args)) {
			t.Errorf("the top-level usage does not list %q", c.cli)
		}
		var stderr bytes.Buffer
		if code := run(append(strings.Fields(c.cli), "-h"), io.Discard, &stderr); code != 2 {
			t.Errorf("%q -h exited %d", c.cli, code)
		}
		help := stderr.String()
		if !strings.HasPrefix(help, "usage: "+c.usageLine()+"\n"+c.summary+"\n") {
			t.Errorf("%q -h says\n%s\nwant the table's usage %q", c.cli, help, c.usageLine())
		}
		if strings.Contains(help, "not in the table") {
			t.Errorf("%q -h: its flag set is made under another name:\n%s", c.cli, help)
		}
		// Every flag the usage line names is one the command has.
		for _, word := range strings.Fields(c.args) {
			name, ok := strings.CutPrefix(strings.Trim(word, "[]"), "--")
			if ok && !strings.Contains(help, "\n  -"+name+" ") && !strings.Contains(help, "\n  -"+name+"\n") {
				t.Errorf("%q names --%s, which its -h does not describe:\n%s", c.cli, name, help)
			}
		}
	}
	// A command with subcommands, given none or one it lacks, lists them.
	for _, args := range [][]string{{"contact"}, {"contact", "-h"}, {"contact", "frobnicate"}} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "backchannel contact verify NAME") {
			t.Errorf("run(%q) = %d, %q", args, code, stderr.String())
		}
	}
}

// TestStateInUseSaidFirst: on a state another process has open (a daemon),
// `client run` and `ui` say so before asking a passphrase or printing an
// address, and `wipe` without a daemon answering does not wipe under it.
func TestStateInUseSaidFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	v, err := vault.CreateDir(dir, testrand.New(7), []byte("p"), vault.Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, args := range [][]string{{"client", "run", "--dir", dir}, {"ui", "--dir", dir}, {"wipe", "--yes", "--dir", dir}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "in use by another process") {
			t.Errorf("run(%q) = %d\nstdout %q\nstderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	if !vault.Exists(dir) {
		t.Fatal("wipe wiped a state another process has open")
	}
}
