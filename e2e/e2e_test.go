// Package e2e runs backchannel as separate OS processes talking over
// loopback: the built binary (built once, without -race, in TestMain) runs
// each node of a network that `backchannel testnet` wrote, and the tests
// drive it with a client and read the nodes' metrics endpoints.
package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/link/clientlink"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/tools/readiness"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "backchannel-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "backchannel")
	// The fault switches (BACKCHANNEL_FAULT_*) are compiled in for these
	// tests only; a release build has none.
	build := exec.Command("go", "build", "-tags", "faults", "-o", binPath, "../cmd/backchannel")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// network is a testnet whose nodes run as processes.
type network struct {
	t        testing.TB
	dir      string
	doc      *directory.Document
	trust    directory.Trust
	metrics  map[string]string // node name → metrics address
	procs    map[string]*exec.Cmd
	format   *sphinx.Format
	clients  map[string]wire.Keypair
	boxes    map[string]mailbox.ID
	rng      *rand.Rand
	logFiles map[string]string
	// env adds environment variables to a node's process (fault switches).
	env map[string][]string
	// outputs are the nodes' outputs, to wait for what they log.
	outputs map[string]*output
	// bins names the binary that runs a node, where it is not binPath.
	bins map[string]string
	// clientEnv adds environment variables to every client's commands
	// (test-build switches).
	clientEnv []string

	// mu serializes what tests sharing the network do to it: the account
	// tables, the users' names.
	mu    sync.Mutex
	users map[string]int // users made, by name; guarded by mu
}

// testPorts hands out the loopback ports of the tests' processes. They
// come from below the kernel's ephemeral range (32768 and up by default),
// which outgoing connections take their source ports from and listeners on
// port 0 (every other package's tests) take theirs from: a port found free
// by listening on port 0 and closing could be taken by either before the
// node bound it ("address already in use", seen in CI). Each is handed out
// once per test binary, and checked free by listening on it.
var testPorts = struct {
	sync.Mutex
	next int
}{next: 20000}

// freeAddresses returns n loopback addresses for the tests' processes to
// listen on.
func freeAddresses(t testing.TB, n int) []string {
	testPorts.Lock()
	defer testPorts.Unlock()
	var out []string
	for len(out) < n {
		if testPorts.next >= 32768 {
			t.Fatal("the tests ran out of loopback ports below the ephemeral range")
		}
		addr := fmt.Sprintf("127.0.0.1:%d", testPorts.next)
		testPorts.next++
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use by something else: the next
		}
		ln.Close()
		out = append(out, addr)
	}
	return out
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	return runBin(t, binPath, args...)
}

// runBin is run with another build of backchannel (the previous release).
func runBin(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func startNetwork(t *testing.T, mixesPerLayer int, users map[string]string) *network {
	return startNetworkWith(t, mixesPerLayer, users, nil)
}

// startNetworkWith starts a network whose nodes get extra environment
// variables, with extra testnet flags after them (under the key "testnet").
func startNetworkWith(t *testing.T, mixesPerLayer int, users map[string]string, env map[string][]string) *network {
	t.Helper()
	return startNetworkBuilt(t, binPath, nil, mixesPerLayer, users, env)
}

// startNetworkBuilt is startNetworkWith with testnet run by the binary
// gen, and nodes run by the binaries bins names (binPath for the others).
func startNetworkBuilt(t *testing.T, gen string, bins map[string]string, mixesPerLayer int, users map[string]string, env map[string][]string) *network {
	t.Helper()
	nw := generateNetwork(t, gen, mixesPerLayer, env)
	nw.bins = bins
	dir := nw.dir
	for user, provider := range users {
		key, err := wire.GenerateKeypair(nw)
		if err != nil {
			t.Fatal(err)
		}
		var box mailbox.ID
		nw.Read(box[:])
		nw.clients[user], nw.boxes[user] = key, box
		run(t, "provider", "add-user", "-accounts", filepath.Join(dir, provider, "accounts.txt"),
			"-link-key", hex.EncodeToString(key.Public), "-mailbox", hex.EncodeToString(box[:]))
	}
	for _, n := range nw.doc.Nodes {
		nw.start(n.Name)
	}
	t.Cleanup(nw.stopAll)
	return nw
}

// generateNetwork runs testnet (the binary gen) for a static network of
// three layers and two providers, with the extra flags env["testnet"], and
// loads it; it starts nothing.
func generateNetwork(t *testing.T, gen string, mixesPerLayer int, env map[string][]string) *network {
	t.Helper()
	nodes := 2 + 3*mixesPerLayer
	addrs := freeAddresses(t, 2*nodes)
	dir := t.TempDir()
	args := []string{"testnet", "-static", "-dir", dir, "-mixes", strconv.Itoa(mixesPerLayer), "-layers", "3", "-providers", "2",
		"-addresses", strings.Join(addrs[:nodes], ","), "-metrics-addresses", strings.Join(addrs[nodes:], ","),
		"-mean-delay", "1ms",
		// The tests' own links send and fetch as fast as they can: the
		// document's client rates, which providers' limits follow, say so
		// (a test's flags after these override them).
		"-poll-interval", "10ms", "-send-rate", "300"}
	runBin(t, gen, append(args, env["testnet"]...)...)
	return loadNetwork(t, dir, addrs[nodes:], env)
}

// loadNetwork reads what testnet wrote to dir, with the nodes' metrics
// addresses in document order; it starts nothing.
func loadNetwork(t testing.TB, dir string, metrics []string, env map[string][]string) *network {
	t.Helper()
	doc, trust := readDocument(t, dir)
	nw := &network{
		users: map[string]int{},
		t:     t, dir: dir, doc: doc, trust: trust, metrics: map[string]string{}, procs: map[string]*exec.Cmd{},
		clients: map[string]wire.Keypair{}, boxes: map[string]mailbox.ID{}, logFiles: map[string]string{},
		rng: rand.New(rand.NewChaCha8([32]byte{byte(len(doc.Nodes))})), env: env, outputs: map[string]*output{},
	}
	var err error
	nw.format, err = sphinx.New(doc.Parameters.Geometry)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range doc.Nodes {
		nw.metrics[n.Name] = metrics[i]
	}
	return nw
}

// readDocument reads the network document testnet wrote to dir, and the
// trust that accepts it (the generated authority's key).
func readDocument(t testing.TB, dir string) (*directory.Document, directory.Trust) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "network.doc"))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := keyfile.ReadIdentity(filepath.Join(dir, "authority-1", "authority.key"))
	if err != nil {
		t.Fatal(err)
	}
	trust := directory.Trust{Authorities: []ed25519.PublicKey{authority.Public().(ed25519.PublicKey)}, Threshold: 1, ClockSkew: time.Minute}
	doc, err := directory.Verify(data, trust, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return doc, trust
}

// Read makes the network a deterministic random source for test keys.
func (nw *network) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(nw.rng.Uint32())
	}
	return len(p), nil
}

// start runs a node's process and waits until it notifies readiness.
func (nw *network) start(name string) {
	t := nw.t
	t.Helper()
	logPath := filepath.Join(nw.dir, name, "node.log")
	out, err := newOutput(logPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := binPath
	if b, ok := nw.bins[name]; ok {
		bin = b
	}
	ready, err := readiness.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	cmd := dieWithTests(exec.Command(bin, "node", "run", "--config", filepath.Join(nw.dir, name, "node.toml")))
	cmd.Env = append(append(os.Environ(), nw.env[name]...), ready.Env())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nw.procs[name], nw.logFiles[name], nw.outputs[name] = cmd, logPath, out
	wait := func() error { return ready.Wait(20 * time.Second) }
	if _, old := nw.bins[name]; old {
		// An earlier release (TestPreviousRelease) may predate readiness
		// notification: its log line is all it says.
		wait = func() error { return out.waitFor(0, 20*time.Second, "node running") }
	}
	if err := wait(); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("%s did not come up: %v\n%s", name, err, log)
	}
}

// kill ends a node's process with the given signal and waits for it.
func (nw *network) kill(name string, sig syscall.Signal) {
	cmd := nw.procs[name]
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	cmd.Wait()
	delete(nw.procs, name)
}

func (nw *network) stopAll() {
	for name := range nw.procs {
		nw.kill(name, syscall.SIGTERM)
	}
	if nw.t.Failed() {
		for name, path := range nw.logFiles {
			log, _ := os.ReadFile(path)
			nw.t.Logf("--- %s log:\n%s", name, log)
		}
	}
}

func (nw *network) node(name string) *directory.Node {
	for i := range nw.doc.Nodes {
		if nw.doc.Nodes[i].Name == name {
			return &nw.doc.Nodes[i]
		}
	}
	nw.t.Fatalf("no node %s", name)
	return nil
}

func (nw *network) dial(user, provider string) *clientlink.Link {
	p := nw.node(provider)
	l, err := clientlink.Dial(context.Background(), p.Address, nw.clients[user], p.LinkKey, wire.FrameSizeFor(nw.format.Geometry().PacketLength()), false)
	if err != nil {
		nw.t.Fatal(err)
	}
	nw.t.Cleanup(func() { l.Close() })
	return l
}

// packet makes a packet numbered i from provider-a through a random mix per
// layer to user's mailbox at provider-b, with delays of 0 to 2 ms.
func (nw *network) packet(i uint32, user string) []byte {
	hop := func(n *directory.Node, cmds ...sphinx.Command) sphinx.PathHop {
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: cmds}
	}
	delay := func() sphinx.Command { return sphinx.NodeDelay{Milliseconds: uint32(nw.rng.IntN(3))} }
	path := []sphinx.PathHop{hop(nw.node("provider-a"), delay())}
	for layer := uint8(1); layer <= nw.doc.Parameters.Layers; layer++ {
		mixes := nw.doc.Layer(layer)
		path = append(path, hop(mixes[nw.rng.IntN(len(mixes))], delay()))
	}
	path = append(path, hop(nw.node("provider-b"), sphinx.Recipient{ID: nw.boxes[user]}))
	p, err := nw.format.NewPacket(nw, path, binary.BigEndian.AppendUint32(nil, i))
	if err != nil {
		nw.t.Fatal(err)
	}
	return p
}

// counter sums a counter over the given nodes (with the given label value,
// if any), from their metrics endpoints.
func (nw *network) counter(name, label string, nodes ...string) float64 {
	total := 0.0
	for _, n := range nodes {
		resp, err := http.Get("http://" + nw.metrics[n] + "/metrics")
		if err != nil {
			nw.t.Fatalf("metrics of %s: %v", n, err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, name) || (label != "" && !strings.Contains(line, `"`+label+`"`)) {
				continue
			}
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err == nil {
				total += v
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return total
}

func (nw *network) names() []string {
	var out []string
	for _, n := range nw.doc.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// receive fetches from l until every number in want has arrived at least
// once, and returns how often each arrived.
func receive(t *testing.T, l *clientlink.Link, want int, timeout time.Duration) map[uint32]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := map[uint32]int{}
	for len(got) < want {
		batch, remaining, err := l.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(got), want, err)
		}
		for _, m := range batch {
			var d wire.Delivery
			if err := d.UnmarshalBinary(m.Packet); err != nil {
				t.Fatal(err)
			}
			got[binary.BigEndian.Uint32(d.Payload)]++
		}
		if len(batch) == 0 && remaining == 0 {
			// Nothing waiting: poll again shortly.
			select {
			case <-ctx.Done():
				t.Fatalf("after %d of %d: %v", len(got), want, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return got
}

// TestThousandPacketsAcrossProcesses sends 1,000 distinct packets at 200 per
// second from a client at provider-a through 3 layers of 2 mixes to a mailbox
// at provider-b, every node its own process: every packet arrives exactly
// once, and no node counts a queue overflow.
func TestThousandPacketsAcrossProcesses(t *testing.T) {
	nw := startNetwork(t, 2, map[string]string{"alice": "provider-a", "bob": "provider-b"})
	alice, bob := nw.dial("alice", "provider-a"), nw.dial("bob", "provider-b")

	// Clients get the network document through their provider, and check
	// the authority's signature themselves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	signed, err := alice.FetchDocument(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := directory.Verify(signed, nw.trust, time.Now())
	if err != nil || doc.Epoch != nw.doc.Epoch || len(doc.Nodes) != len(nw.doc.Nodes) {
		t.Fatalf("document from the provider: %v", err)
	}

	const count = 1000
	packets := make([][]byte, count)
	for i := range packets {
		packets[i] = nw.packet(uint32(i), "bob")
	}
	tick := time.NewTicker(5 * time.Millisecond) // 200 per second
	defer tick.Stop()
	for i := range packets {
		<-tick.C
		if _, err := alice.Send(packets[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, bob, count, 60*time.Second)
	// Fetch until the mailbox is empty, to see any duplicate.
	drainCtx, drainCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer drainCancel()
	for {
		batch, remaining, err := bob.Fetch(drainCtx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range batch {
			var d wire.Delivery
			d.UnmarshalBinary(m.Packet)
			got[binary.BigEndian.Uint32(d.Payload)]++
		}
		if len(batch) == 0 && remaining == 0 {
			break
		}
	}
	for i := range count {
		if got[uint32(i)] != 1 {
			t.Fatalf("packet %d arrived %d times", i, got[uint32(i)])
		}
	}
	names := nw.names()
	if n := nw.counter("backchannel_packets_dropped_total", "queue_overflow", names...); n != 0 {
		t.Fatalf("%v queue-overflow drops", n)
	}
	if n := nw.counter("backchannel_packets_dropped_total", "", names...); n != 0 {
		t.Fatalf("%v drops in all", n)
	}
	if n := nw.counter("backchannel_packets_delivered_total", "", "provider-b"); n != count {
		t.Fatalf("provider-b stored %v packets, want %d", n, count)
	}
}

// TestProviderKilledLosesNothing kills the receiving provider with SIGKILL
// while packets arrive, restarts it, and checks that every packet still
// arrives: what it acknowledged was on disk, and what it had not the last
// mixes retransmit when it is back.
func TestProviderKilledLosesNothing(t *testing.T) {
	nw := startNetwork(t, 1, map[string]string{"alice": "provider-a", "bob": "provider-b"})
	alice := nw.dial("alice", "provider-a")
	const count = 400
	for i := range count {
		if _, err := alice.Send(nw.packet(uint32(i), "bob")); err != nil {
			t.Fatal(err)
		}
		if i == count/2 {
			// Kill provider-b mid-stream: once it has stored packets.
			waitCounter(t, nw, "provider-b", "backchannel_packets_delivered_total", 50)
			nw.kill("provider-b", syscall.SIGKILL)
		}
	}
	nw.start("provider-b")
	bob := nw.dial("bob", "provider-b")
	got := receive(t, bob, count, 60*time.Second)
	duplicates := 0
	for _, n := range got {
		duplicates += n - 1
	}
	// Duplicates are possible (a packet stored but not yet acknowledged
	// when the provider died is sent again); losses are not.
	t.Logf("all %d packets arrived; %d stored twice across the crash", count, duplicates)
}

// dieWithTests makes a daemon the tests start end when the test process
// does, even when it is killed (a timeout, a Ctrl-C): orphaned nodes and
// clients would otherwise go on using the machine's cores under the next
// run. (Linux's parent-death signal: tied to the thread that started the
// daemon, which the Go runtime keeps while the process lives.)
func dieWithTests(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
