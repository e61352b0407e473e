package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/tools/readiness"
)

// clientProc is a client daemon running as its own process, driven by the
// command line, as a user would.
type clientProc struct {
	t    *testing.T
	bin  string // the build of backchannel it runs
	name string
	dir  string
	env  []string
	cmd  *exec.Cmd
	log  string
	out  *output
}

// clientParameters are testnet flags for a network that clients use: fast
// polling and send slots, so that hundreds of messages take seconds. The
// rates keep a network of a few clients below what two cores forward in
// X-Wing packets (BENCHMARKS.md, figure 3: saturation between 600 and 800
// packets/s): at 150 slots a second and 10 ms polls, a few clients sent it
// past saturation, and the features' conversation stalled in 2 of 3 runs.
var clientParameters = []string{"-poll-interval", "20ms", "-send-rate", "60", "-loop-rate", "2", "-drop-rate", "2"}

var accountLine = regexp.MustCompile(`--link-key ([0-9a-f]{64}) --mailbox ([0-9a-f]{64})`)

// newClient makes a user at the provider (init, and the operator's
// add-user) and starts the daemon.
func (nw *network) newClient(t *testing.T, name, provider string, daemonArgs ...string) *clientProc {
	t.Helper()
	return nw.newClientIn(t, name, provider, nw.clientDir(name), daemonArgs...)
}

// clientDir is a new client's state directory: clients/NAME, or NAME-2 and
// on when tests sharing the network make users of the same name. (Short:
// the control socket's path must fit a Unix socket address.)
func (nw *network) clientDir(name string) string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.users[name]++
	if n := nw.users[name]; n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	return filepath.Join(nw.dir, "clients", name)
}

// newClientIn is newClient with the state directory at dir.
func (nw *network) newClientIn(t *testing.T, name, provider, dir string, daemonArgs ...string) *clientProc {
	t.Helper()
	c := nw.signUp(t, name, provider, dir)
	c.start(daemonArgs...)
	t.Cleanup(c.stop)
	return c
}

// signUp makes a user's state at the provider (init, and the operator's
// add-user), without starting a daemon.
func (nw *network) signUp(t *testing.T, name, provider, dir string) *clientProc {
	t.Helper()
	return nw.signUpWith(t, binPath, name, provider, dir)
}

// signUpWith is signUp with another build of backchannel, for the user
// and the provider's operator.
func (nw *network) signUpWith(t *testing.T, bin, name, provider, dir string) *clientProc {
	t.Helper()
	c := &clientProc{t: t, bin: bin, name: name, dir: dir}
	c.env = append(os.Environ(), "BACKCHANNEL_DIR="+c.dir, "BACKCHANNEL_PASSPHRASE="+name+" has a long passphrase",
		"BACKCHANNEL_BACKUP_PASSPHRASE=backup of "+name)
	c.env = append(c.env, nw.clientEnv...)
	out := c.cli("init", "--network", filepath.Join(nw.dir, "network.toml"), "--provider", provider)
	m := accountLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("init printed no account:\n%s", out)
	}
	nw.mu.Lock() // one writer of the account table at a time
	runBin(t, bin, "provider", "add-user", "-accounts", filepath.Join(nw.dir, provider, "accounts.txt"), "-link-key", m[1], "-mailbox", m[2])
	nw.mu.Unlock()
	return c
}

// cli runs a client command and returns its output; it fails the test if
// the command fails.
func (c *clientProc) cli(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("%s: backchannel %s: %v\n%s", c.name, strings.Join(args, " "), err, out)
	}
	return out
}

func (c *clientProc) try(args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs the daemon and waits until its socket answers.
func (c *clientProc) start(args ...string) {
	t := c.t
	t.Helper()
	c.log = filepath.Join(c.t.TempDir(), c.name+".log")
	out, err := newOutput(c.log)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	c.cmd = dieWithTests(exec.Command(c.bin, append([]string{"client", "run"}, args...)...))
	c.cmd.Env = append(c.env, ready.Env())
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.out = out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait := func() error { return ready.Wait(20 * time.Second) }
	if c.bin != binPath {
		// An earlier release (TestPreviousRelease) may predate readiness
		// notification: its log line is all it says.
		wait = func() error { return out.waitFor(0, 20*time.Second, "client running") }
	}
	if err := wait(); err != nil {
		log, _ := os.ReadFile(c.log)
		t.Fatalf("%s's daemon did not come up: %v\n%s", c.name, err, log)
	}
}

func (c *clientProc) stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	c.cmd = nil
	if c.t.Failed() {
		log, _ := os.ReadFile(c.log)
		c.t.Logf("--- %s's client log:\n%s", c.name, log)
	}
}

// befriend exchanges the two users' cards, as files; cardArgs are given
// to b's `card` command.
func befriend(a, b *clientProc, cardArgs ...string) {
	for _, pair := range [][2]*clientProc{{a, b}, {b, a}} {
		card := filepath.Join(a.t.TempDir(), pair[0].name+".card")
		args := []string{"card"}
		if pair[0] == b {
			args = append(args, cardArgs...)
		}
		if err := os.WriteFile(card, []byte(pair[0].cli(args...)), 0o600); err != nil {
			a.t.Fatal(err)
		}
		pair[1].cli("contact", "add", pair[0].name, card)
	}
}

// inboxTexts returns how often each text arrived in the user's inbox, and
// saves files into dir.
func (c *clientProc) inboxTexts(dir string) map[string]int {
	out := c.cli("inbox", "--save", dir)
	texts := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if _, text, ok := strings.Cut(line, ": "); ok && strings.Contains(line, " from ") && !strings.HasPrefix(line, "  saved") {
			texts[text]++
		}
	}
	return texts
}

// TestClientsExchangeMessages: two users at different providers, each a
// daemon process driven by the command line, send 200 messages each way
// through 3 layers of 2 mixes (every node its own process), and alice a
// 256 KiB file: every message is acknowledged and delivered exactly once.
func TestClientsExchangeMessages(t *testing.T) {
	// In parallel with other tests: it waits on the network (delays,
	// retransmissions) far more than it computes, and no epoch changes
	// during it. (Tests bound to epochs run alone: under a parallel test's
	// load a daemon started late missed its epoch.)
	t.Parallel()
	nw := startNetworkWith(t, 2, nil, map[string][]string{"testnet": clientParameters})
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)

	const each = 200
	file := make([]byte, 256<<10)
	rand.Read(file)
	filePath := filepath.Join(t.TempDir(), "dossier.bin")
	os.WriteFile(filePath, file, 0o600)
	alice.cli("send", "--file", filePath, "bob")
	for i := range each {
		alice.cli("send", "bob", fmt.Sprintf("alice to bob %d", i))
		bob.cli("send", "alice", fmt.Sprintf("bob to alice %d", i))
	}
	for _, c := range []*clientProc{alice, bob} {
		out := c.cli("status", "--wait", "--timeout", "5m")
		if n := deliveredCount(out); n != len(c.outbox()) {
			t.Fatalf("%s: %d messages delivered of %d:\n%s", c.name, n, len(c.outbox()), out)
		}
		t.Logf("%s: %s", c.name, lastLines(out, 4))
	}
	bob.cli("inbox", "--wait", fmt.Sprint(each+1), "--timeout", "1m")
	saved := filepath.Join(t.TempDir(), "received") // not there yet: inbox --save makes it
	bob.eachOnce(saved, "alice to bob", each)
	alice.eachOnce(saved, "bob to alice", each)
	files, _ := filepath.Glob(filepath.Join(saved, "*-dossier.bin"))
	if len(files) != 1 {
		t.Fatalf("bob saved %d copies of the file", len(files))
	}
	if got, _ := os.ReadFile(files[0]); !bytes.Equal(got, file) {
		t.Fatal("the file arrived damaged")
	}
}

// eachOnce checks that the texts "<prefix> 0" to "<prefix> n-1" are each
// in the user's inbox exactly once (saving files to dir).
func (c *clientProc) eachOnce(dir, prefix string, n int) {
	c.t.Helper()
	texts := c.inboxTexts(dir)
	for i := range n {
		if text := fmt.Sprintf("%s %d", prefix, i); texts[text] != 1 {
			c.t.Fatalf("%s: %q arrived %d times", c.name, text, texts[text])
		}
	}
}

// deliveredCount counts the delivered messages `status` lists (this
// release's lines end "  delivered"; the previous release's said
// "delivered (n/n fragments acknowledged)").
func deliveredCount(status string) int {
	n := 0
	for _, line := range strings.Split(status, "\n") {
		if strings.HasSuffix(line, "  delivered") || strings.Contains(line, " delivered (") {
			n++
		}
	}
	return n
}

// outbox returns the IDs of the user's sent messages.
func (c *clientProc) outbox() []string {
	out, _ := c.try("status")
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "  to ") {
			ids = append(ids, strings.Fields(line)[0])
		}
	}
	return ids
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestLossyMixStillDelivers: the only mix of layer 2 drops 10% of packets
// at random (a test build's fault switch); end-to-end retransmission still
// delivers every message exactly once.
func TestLossyMixStillDelivers(t *testing.T) {
	t.Parallel() // as TestClientsExchangeMessages
	nw := startNetworkWith(t, 1, nil, map[string][]string{
		"testnet": clientParameters, "mix-2-a": {"BACKCHANNEL_FAULT_DROP=0.1", "BACKCHANNEL_FAULT_SEED=7"},
	})
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	const count = 60
	for i := range count {
		alice.cli("send", "bob", fmt.Sprintf("through a lossy mix %d", i))
	}
	out := alice.cli("status", "--wait", "--timeout", "5m")
	if n := deliveredCount(out); n != count {
		t.Fatalf("%d of %d delivered:\n%s", n, count, out)
	}
	texts := bob.inboxTexts(t.TempDir())
	for i := range count {
		if text := fmt.Sprintf("through a lossy mix %d", i); texts[text] != 1 {
			t.Fatalf("%q arrived %d times", text, texts[text])
		}
	}
	dropped := nw.counter("backchannel_packets_dropped_total", "fault_injected", "mix-2-a")
	if dropped == 0 {
		t.Fatal("the mix dropped nothing: the fault switch did not work")
	}
	t.Logf("the mix dropped %v packets; alice: %s", dropped, lastLines(out, 4))
}

// TestDeadMixReportsFailure: the only mix of layer 2 drops everything;
// the sender marks the message failed at its deadline (a short time
// budget here), says why, and its status command exits non-zero, instead
// of waiting for ever.
func TestDeadMixReportsFailure(t *testing.T) {
	t.Parallel() // as TestClientsExchangeMessages
	nw := startNetworkWith(t, 1, nil, map[string][]string{
		"testnet": clientParameters, "mix-2-a": {"BACKCHANNEL_FAULT_DROP=1"},
	})
	alice := nw.newClient(t, "alice", "provider-a", "--time-budget", "10s")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	alice.cli("send", "bob", "is anyone there?")
	out, err := alice.try("status", "--wait", "--timeout", "2m")
	if err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("status after a dead mix: %v\n%s", err, out)
	}
	if !strings.Contains(out, "not acknowledged within 10s") {
		t.Fatalf("the failure does not say why:\n%s", out)
	}
	t.Logf("alice is told: %s", lastLines(out, 5))

	// She sends it again, then cancels it: it stops, and says so.
	failed := alice.outbox()[0]
	again := alice.cli("retry", failed)
	id, ok := strings.CutPrefix(strings.TrimSpace(again), "queued again as ")
	if !ok {
		t.Fatalf("retry of a failed text says %q", again)
	}
	if out := alice.cli("cancel", id); !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel says %q", out)
	}
	out, _ = alice.try("status")
	if !strings.Contains(out, id+"  to bob  text \"is anyone there?\"  failed: cancelled by you") {
		t.Fatalf("after the cancel, status says:\n%s", out)
	}
	if out, err := alice.try("cancel", id); err == nil || !strings.Contains(out, "not on its way") {
		t.Fatalf("cancelling it again: %v %q", err, out)
	}
}
