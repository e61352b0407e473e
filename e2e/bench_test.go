package e2e

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/packet/x25519"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/tools/loadgen"
)

// mixBench is mix-1-a of a testnet with delays zero, set up for a
// benchmark to feed it (posing as provider-a) and sink what it forwards
// (posing as mix-2-a, the only mix of layer 2).
type mixBench struct {
	dir                    string
	addrs                  []string
	doc                    *directory.Document
	mix1, mix2             *directory.Node
	providerLink, mix2Link wire.Keypair
	mix1Sphinx             *sphinx.PrivateKey
	format                 *sphinx.Format
	frame                  int
	packets                [][]byte
}

// newMixBench writes the network and builds n distinct 4-hop packets
// through mix-1-a; it starts nothing.
func newMixBench(b *testing.B, n int) *mixBench {
	dir := b.TempDir()
	addrs := freeAddresses(b, 10)
	out, err := exec.Command(binPath, "testnet", "-static", "-dir", dir, "-mixes", "1", "-layers", "3", "-providers", "2",
		"-addresses", strings.Join(addrs[:5], ","), "-metrics-addresses", strings.Join(addrs[5:], ","), "-mean-delay", "0s",
		"-packet-format", *mixFormat).CombinedOutput()
	if err != nil {
		b.Fatalf("testnet: %v\n%s", err, out)
	}
	doc, _ := readDocument(b, dir)
	node := func(name string) *directory.Node {
		for i := range doc.Nodes {
			if doc.Nodes[i].Name == name {
				return &doc.Nodes[i]
			}
		}
		b.Fatalf("no node %s", name)
		return nil
	}
	mix1, mix2, mix3, providerB := node("mix-1-a"), node("mix-2-a"), node("mix-3-a"), node("provider-b")
	linkOf := func(name string) wire.Keypair {
		secret, err := keyfile.ReadX25519(filepath.Join(dir, name, "link.key"), keyfile.Link)
		if err != nil {
			b.Fatal(err)
		}
		var pub [32]byte
		if err := x25519.ScalarBaseMult(&pub, &secret); err != nil {
			b.Fatal(err)
		}
		return wire.Keypair{Private: secret[:], Public: pub[:]}
	}
	providerLink, mix2Link := linkOf("provider-a"), linkOf("mix-2-a")
	mix1Sphinx, err := keyfile.ReadSphinx(filepath.Join(dir, "mix-1-a", "sphinx-keys"), doc.Parameters.Geometry.Scheme, doc.Epoch)
	if err != nil {
		b.Fatal(err)
	}

	format, err := sphinx.New(doc.Parameters.Geometry)
	if err != nil {
		b.Fatal(err)
	}
	frame := wire.FrameSizeFor(format.Geometry().PacketLength())
	hop := func(n *directory.Node, cmds ...sphinx.Command) sphinx.PathHop {
		return sphinx.PathHop{ID: n.ID(), PublicKey: n.SphinxKey, Commands: cmds}
	}
	path := []sphinx.PathHop{hop(mix1, sphinx.NodeDelay{}), hop(mix2, sphinx.NodeDelay{}), hop(mix3, sphinx.NodeDelay{}), hop(providerB, sphinx.Recipient{})}
	packets := make([][]byte, n)
	var wg sync.WaitGroup
	for w := range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += runtime.NumCPU() {
				p, err := format.NewPacket(cryptoReader{}, path, []byte("benchmark"))
				if err != nil {
					b.Error(err)
					return
				}
				packets[i] = p
			}
		}()
	}
	wg.Wait()

	return &mixBench{dir: dir, addrs: addrs, doc: doc, mix1: mix1, mix2: mix2, providerLink: providerLink, mix2Link: mix2Link,
		mix1Sphinx: mix1Sphinx, format: format, frame: frame, packets: packets}
}

// sink listens as mix-2-a and, in a goroutine, hands the first link to
// serve (the raw connection, and the link over it); it stops listening
// when the benchmark ends.
func (m *mixBench) sink(b *testing.B, serve func(net.Conn, *wire.Conn)) {
	ln, err := net.Listen("tcp", m.mix2.Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		a, err := wire.NewAcceptor(m.mix2Link, nil)
		if err != nil {
			b.Error(err)
			return
		}
		c, err := a.Accept(conn, func([wire.KeySize]byte) error { return nil }, wire.OneFrameSize(m.frame))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		serve(conn, c)
	}()
}

// startMix runs mix-1-a as a process and returns the network (to stop it)
// and a link to it as provider-a, whose acknowledgements are drained.
func (m *mixBench) startMix(b *testing.B) (*network, *wire.Conn) {
	nw := loadNetwork(b, m.dir, m.addrs[5:], nil)
	nw.start("mix-1-a")
	conn, err := net.Dial("tcp", m.mix1.Address)
	if err != nil {
		b.Fatal(err)
	}
	feeder, err := wire.Dial(conn, m.providerLink, m.mix1.LinkKey, m.frame)
	if err != nil {
		b.Fatal(err)
	}
	go func() { // drain the mix's acknowledgements
		for {
			if _, err := feeder.ReadFrame(); err != nil {
				return
			}
		}
	}()
	return nw, feeder
}

// BenchmarkMixForwarding measures how many packets per second one mix node
// (its own process, the built binary) forwards over loopback with zero
// delays, fed distinct pre-built packets by this process (posing as the
// provider before it) and drained by this process (posing as the next mix,
// acknowledging as a mix would). It reports the rate and its ratio to the
// unwrap floor, cores ÷ unwrap time, with the unwrap time measured in this
// run, before and after the feed.
//
//	go test -run '^$' -bench MixForwarding -benchtime 20000x ./e2e
func BenchmarkMixForwarding(b *testing.B) {
	m := newMixBench(b, b.N)
	format, packets, mix1Sphinx := m.format, m.packets, m.mix1Sphinx
	unwrapBefore := unwrapTime(b, format, mix1Sphinx, packets)

	// The sink: mix-2-a's address and key, acknowledging like a mix.
	received := make(chan struct{})
	m.sink(b, func(_ net.Conn, c *wire.Conn) {
		// Count packet frames, and acknowledge every 64 as a mix would,
		// so the sink costs this machine's two cores little: it only
		// decrypts (the contents were checked by the tests).
		for n := 0; n < b.N; {
			f, err := c.ReadFrame()
			if err != nil {
				b.Error(err)
				return
			}
			if f.Type != wire.FramePacket {
				continue
			}
			if n++; n%64 == 0 || n == b.N {
				c.WriteFrame(wire.Frame{Type: wire.FrameAck, Seq: f.Seq})
			}
		}
		close(received)
	})

	// Profiles on: the heap profile's statistics count the mix's
	// allocations (an idle handler costs nothing).
	m.servePprof(b)
	nw, feeder := m.startMix(b)
	defer nw.stopAll()
	defer feeder.Close()

	mixPID := nw.procs["mix-1-a"].Process.Pid
	mallocs0 := mixMallocs(b, nw.metrics["mix-1-a"])
	mixCPU0, selfCPU0 := processCPU(b, mixPID), loadgen.SelfCPU()
	profiled := make(chan error, 1)
	if *mixProfile != "" {
		go func() { profiled <- saveProfile(nw.metrics["mix-1-a"], *mixProfile) }()
	}
	b.ResetTimer()
	start := time.Now()
	batch := make([]wire.Frame, 0, 64)
	for i, p := range packets {
		batch = append(batch, wire.Frame{Type: wire.FramePacket, Seq: uint64(i + 1), Body: p})
		if len(batch) == cap(batch) || i == len(packets)-1 {
			if err := feeder.WriteFrames(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	select {
	case <-received:
	case <-time.After(5 * time.Minute):
		b.Fatal("the sink did not receive every packet")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if *mixProfile != "" {
		if err := <-profiled; err != nil {
			b.Fatal(err)
		}
	}
	mixCores := (processCPU(b, mixPID) - mixCPU0).Seconds() / elapsed.Seconds()
	mallocs := float64(mixMallocs(b, nw.metrics["mix-1-a"])-mallocs0) / float64(b.N)
	unwrapAllocs := testing.AllocsPerRun(100, func() {
		work := slices.Clone(packets[0])
		if _, err := format.Unwrap(mix1Sphinx, work); err != nil {
			b.Fatal(err)
		}
	}) - 1 // the clone
	selfCores := (loadgen.SelfCPU() - selfCPU0).Seconds() / elapsed.Seconds()

	unwrapAfter := unwrapTime(b, format, mix1Sphinx, packets[:min(len(packets), 2000)])
	unwrap := (unwrapBefore + unwrapAfter) / 2
	rate := float64(b.N) / elapsed.Seconds()
	floor := float64(runtime.NumCPU()) / unwrap.Seconds()
	b.ReportMetric(rate, "packets/s")
	b.ReportMetric(floor, "floor-packets/s")
	b.ReportMetric(rate/floor, "of-floor")
	b.ReportMetric(float64(unwrap.Microseconds()), "unwrap-µs")
	b.ReportMetric(mixCores, "mix-cores")
	b.ReportMetric(selfCores, "feeder+sink-cores")
	b.ReportMetric(mallocs, "mix-allocs/pkt")
	b.ReportMetric(mallocs-unwrapAllocs, "beyond-unwrap-allocs/pkt")
}

// mixMallocs is how many allocations a node's process has made so far:
// the Mallocs of the runtime statistics its heap profile ends with.
func mixMallocs(b *testing.B, metrics string) uint64 {
	resp, err := http.Get("http://" + metrics + "/debug/pprof/heap?debug=1")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# Mallocs = "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no Mallocs in the heap profile of %s", metrics)
	return 0
}

var mixFormat = flag.String("mix-format", "xwing", "BenchmarkMixForwarding and BenchmarkMixLatency: the packet format, xwing or x25519")

var mixProfile = flag.String("mix-profile", "", "BenchmarkMixForwarding: save a 2-second CPU profile of the mix, from the start of the feed, to this file")

// servePprof turns on mix-1-a's profiles on its metrics listener.
func (m *mixBench) servePprof(b *testing.B) {
	editNodeConfig(b, filepath.Join(m.dir, "mix-1-a", "node.toml"), func(c *config.Node) { c.Node.Pprof = true })
}

// saveProfile fetches a 2-second CPU profile from a node's metrics address.
func saveProfile(metrics, path string) error {
	resp, err := http.Get("http://" + metrics + "/debug/pprof/profile?seconds=2")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile of the mix: %s: %s", resp.Status, data)
	}
	return os.WriteFile(path, data, 0o600)
}

// processCPU is the CPU time (user and system) a process has used so far.
func processCPU(b *testing.B, pid int) time.Duration {
	u, err := loadgen.Usage(pid)
	if err != nil {
		b.Fatal(err)
	}
	return u.CPU
}

// unwrapTime measures one unwrap of these packets at their first hop, in
// this process, on one core.
func unwrapTime(b *testing.B, f *sphinx.Format, key *sphinx.PrivateKey, packets [][]byte) time.Duration {
	work := make([]byte, len(packets[0]))
	n := min(len(packets), 2000)
	start := time.Now()
	for i := range n {
		copy(work, packets[i])
		if _, err := f.Unwrap(key, work); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

type cryptoReader struct{}

func (cryptoReader) Read(p []byte) (int, error) { return rand.Read(p) }

var mixRate = flag.Float64("mix-rate", 4000, "BenchmarkMixLatency: packets per second fed to the mix")

// BenchmarkMixLatency measures the latency one mix node adds, delays zero,
// under a steady load below saturation: packets are fed at -mix-rate
// (Poisson, default 4,000 a second: about a third of the saturation rate
// BenchmarkMixForwarding measures on 2 cores) and each is timed from its
// write to its arrival at the sink, which recognises it by the group
// element the mix puts in front of it (computed beforehand by unwrapping a
// copy with the mix's key). The time includes both loopback hops and the
// feeder's and sink's own link encryption.
//
//	go test -run '^$' -bench MixLatency -benchtime 40000x ./e2e
func BenchmarkMixLatency(b *testing.B) {
	m := newMixBench(b, b.N)
	expect := make(map[[32]byte]int, b.N)
	work := make([]byte, len(m.packets[0]))
	for i, p := range m.packets {
		copy(work, p)
		if _, err := m.format.Unwrap(m.mix1Sphinx, work); err != nil {
			b.Fatal(err)
		}
		expect[[32]byte(work[:32])] = i
	}
	sent := make([]time.Time, b.N)
	var sentMu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	received := make(chan struct{})
	m.sink(b, func(_ net.Conn, c *wire.Conn) {
		for n := 0; n < b.N; {
			f, err := c.ReadFrame()
			if err != nil {
				b.Error(err)
				return
			}
			if f.Type != wire.FramePacket {
				continue
			}
			now := time.Now()
			i, ok := expect[[32]byte(f.Body[:32])]
			if !ok {
				b.Error("the sink got a packet it did not expect")
				return
			}
			sentMu.Lock()
			latencies = append(latencies, now.Sub(sent[i]))
			sentMu.Unlock()
			n++
			if n%64 == 0 || n == b.N {
				c.WriteFrame(wire.Frame{Type: wire.FrameAck, Seq: f.Seq})
			}
		}
		close(received)
	})
	nw, feeder := m.startMix(b)
	defer nw.stopAll()
	defer feeder.Close()

	rng := mathrand.New(mathrand.NewPCG(1, 2))
	b.ResetTimer()
	next := time.Now()
	for i, p := range m.packets {
		next = next.Add(time.Duration(rng.ExpFloat64() / *mixRate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // pacing the load, not waiting for an event
		}
		sentMu.Lock()
		sent[i] = time.Now()
		sentMu.Unlock()
		if err := feeder.WriteFrame(wire.Frame{Type: wire.FramePacket, Seq: uint64(i + 1), Body: p}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-received:
	case <-time.After(5 * time.Minute):
		b.Fatal("the sink did not receive every packet")
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(*mixRate, "offered-packets/s")
	b.ReportMetric(float64(loadgen.Percentile(latencies, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(loadgen.Percentile(latencies, 99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(loadgen.Percentile(latencies, 99.9).Microseconds()), "p99.9-µs")
}
