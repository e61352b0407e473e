package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
	"github.com/backchannel/backchannel/internal/relay/node"
	"github.com/backchannel/backchannel/internal/tools/loadgen"
	"github.com/backchannel/backchannel/internal/tools/readiness"
	"github.com/backchannel/backchannel/internal/tools/testnet"
)

// runLoadgen is `backchannel loadgen`: it generates a network on loopback,
// runs every node as its own process (this binary's `node run`), drives it
// with simulated clients and reports throughput, latency, losses and the
// processes' CPU and memory.
func runLoadgen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("loadgen", stderr)
	clients := fs.Int("clients", 100, "simulated clients")
	rate := fs.Float64("rate", 1, "loop packets per second per client (Poisson)")
	poll := fs.Duration("poll", time.Second, "how often each client fetches its mailbox")
	duration := fs.Duration("duration", 30*time.Second, "how long clients send")
	drain := fs.Duration("drain", 0, "how long clients go on fetching after sending stops (default: 2 s + 2 poll intervals + 20 mean delays)")
	meanDelay := fs.Duration("mean-delay", 50*time.Millisecond, "mean per-hop delay of the network document")
	layers := fs.Int("layers", 3, "mix layers")
	mixes := fs.Int("mixes", 2, "mixes per layer")
	providers := fs.Int("providers", 2, "providers")
	dir := fs.String("dir", "", "where to write the network (default: a temporary directory, removed afterwards)")
	svg := fs.String("svg", "", "write the latency CDF to this SVG file")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	seed := fs.Uint64("seed", 1, "seed of the clients' schedules and routes")
	pprof := fs.Bool("pprof", false, "serve each node's Go profiles on its metrics listener (addresses printed at start)")
	format := packetFormatFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *clients < 1 || *rate < 0 || *poll <= 0 || *duration <= 0 {
		fmt.Fprintln(stderr, "backchannel: loadgen needs -clients ≥ 1, -rate ≥ 0, -poll > 0 and -duration > 0")
		return 2
	}
	if *drain == 0 {
		*drain = 2*time.Second + 2**poll + 20**meanDelay
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lg := &loadRun{stdout: stdout, stderr: stderr}
	if err := lg.run(ctx, loadOptions{
		clients: *clients, rate: *rate, poll: *poll, duration: *duration, drain: *drain, meanDelay: *meanDelay,
		layers: *layers, mixes: *mixes, providers: *providers, dir: *dir, svg: *svg, json: *jsonOut, seed: *seed, pprof: *pprof,
		format: format.scheme,
	}); err != nil {
		fmt.Fprintf(stderr, "backchannel: loadgen: %v\n", err)
		return 1
	}
	return 0
}

type loadOptions struct {
	clients                  int
	rate                     float64
	poll, duration, drain    time.Duration
	meanDelay                time.Duration
	layers, mixes, providers int
	dir, svg, json           string
	seed                     uint64
	pprof                    bool
	format                   sphinx.Scheme
}

// loadRun is one run of the load generator: the network's processes and
// what is reported.
type loadRun struct {
	stdout, stderr io.Writer
	procs          []*nodeProc
}

// nodeProc is a node running as a child process.
type nodeProc struct {
	name string
	role string
	cmd  *exec.Cmd
}

// loadReport is the run's result, also written as JSON.
type loadReport struct {
	Clients          int                     `json:"clients"`
	RatePerClient    float64                 `json:"rate_per_client"`
	Poll             string                  `json:"poll"`
	MeanDelay        string                  `json:"mean_delay"`
	Duration         string                  `json:"duration"`
	Network          string                  `json:"network"`
	Sent             int                     `json:"sent"`
	Delivered        int                     `json:"delivered"`
	Lost             int                     `json:"lost"`
	Duplicates       int                     `json:"duplicates"`
	SentPerSecond    float64                 `json:"sent_per_second"`
	LatencyMs        map[string]float64      `json:"latency_ms"`
	ModelKS          float64                 `json:"model_ks,omitempty"`
	ModelHops        int                     `json:"model_hops,omitempty"`
	NodeCPUSeconds   float64                 `json:"node_cpu_seconds"`
	CPUPerPacketMs   float64                 `json:"node_cpu_per_delivered_packet_ms"`
	LoadgenCPU       float64                 `json:"loadgen_cpu_seconds"`
	ProviderPerConn  map[string]float64      `json:"provider_bytes_per_client"`
	Processes        map[string]processUsage `json:"processes"`
	Machine          string                  `json:"machine"`
	BytesPerClientPS float64                 `json:"sent_bytes_per_client_second"`
}

type processUsage struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSStart   int64   `json:"rss_start_bytes"`
	RSSEnd     int64   `json:"rss_end_bytes"`
}

func (lg *loadRun) run(ctx context.Context, o loadOptions) error {
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "backchannel-loadgen-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	nodes := o.providers + o.layers*o.mixes
	addrs, err := loopbackAddresses(2 * nodes)
	if err != nil {
		return err
	}
	params := testnet.DefaultParameters(o.layers)
	params.MeanDelay, params.PollInterval = o.meanDelay, o.poll
	params.Geometry.Scheme = o.format
	// The document says what clients send, and providers' limits follow
	// it: the simulated clients send loops at o.rate and nothing else.
	params.SendRate, params.LoopRate, params.DropRate = o.rate, 0, 0
	tn, err := testnet.Generate(testnet.Options{Dir: dir, Layers: o.layers, MixesPerLayer: o.mixes, Providers: o.providers,
		Addresses: addrs[:nodes], MetricsAddresses: addrs[nodes:], Pprof: o.pprof, Parameters: params, Validity: 24 * time.Hour, Now: time.Now(), Rand: cryptoRand{},
		// Every simulated client connects from this host's loopback address.
		LinksPerSource: o.clients + node.DefaultLinksPerSource})
	if err != nil {
		return err
	}
	if o.pprof {
		for i, n := range tn.Names {
			fmt.Fprintf(lg.stderr, "loadgen: %s profiles at http://%s/debug/pprof/\n", n, addrs[nodes+i])
		}
	}
	accounts, err := makeAccounts(tn, o.clients)
	if err != nil {
		return err
	}
	defer lg.stopAll()
	if err := lg.startAll(ctx, tn); err != nil {
		return err
	}
	before := lg.usages()
	perProvider := map[string]int{}
	for _, a := range accounts {
		perProvider[a.Provider]++
	}
	terminal := false
	if f, ok := lg.stderr.(*os.File); ok {
		if info, err := f.Stat(); err == nil {
			terminal = info.Mode()&os.ModeCharDevice != 0
		}
	}
	var connected map[string]loadgen.ProcessUsage
	var self0 time.Duration
	fmt.Fprintf(lg.stderr, "loadgen: %d clients on %d providers, %d layers of %d mixes, %g packets/s each, poll %v, mean delay %v; sending for %v\n",
		o.clients, o.providers, o.layers, o.mixes, o.rate, o.poll, o.meanDelay, o.duration)
	stats, err := loadgen.Run(ctx, loadgen.Config{
		Document: tn.Document, Accounts: accounts, Rate: o.rate, Poll: o.poll, Duration: o.duration, Drain: o.drain, Seed: o.seed,
		Connected: func() {
			connected = lg.usages()
			self0 = loadgen.SelfCPU()
			fmt.Fprintf(lg.stderr, "loadgen: %d links up\n", o.clients)
		},
		Progress: func(elapsed time.Duration, s loadgen.Snapshot) {
			// On a terminal one line is rewritten every second; in a
			// log, a line every ten seconds.
			end := "\n"
			if terminal {
				end = "   \r"
			} else if int(elapsed.Seconds()+0.5)%10 != 0 {
				return
			}
			fmt.Fprintf(lg.stderr, "loadgen: %5.0fs  sent %8d  delivered %8d  in flight %7d  duplicates %d%s",
				elapsed.Seconds(), s.Sent, s.Delivered, s.Sent-s.Delivered, s.Duplicates, end)
		},
	})
	if terminal {
		fmt.Fprintln(lg.stderr)
	}
	if err != nil {
		return err
	}
	r, curves := lg.report(o, stats, before, connected, perProvider, loadgen.SelfCPU()-self0)
	lg.print(r, perProvider)
	return lg.write(o, r, curves)
}

func (lg *loadRun) print(r loadReport, perProvider map[string]int) {
	w := lg.stdout
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "network: %s; mean delay %s, poll %s\n", r.Network, r.MeanDelay, r.Poll)
	fmt.Fprintf(w, "load: %d clients × %g packets/s for %s: %d sent (%.1f/s), %d delivered, %d lost, %d duplicates\n",
		r.Clients, r.RatePerClient, r.Duration, r.Sent, r.SentPerSecond, r.Delivered, r.Lost, r.Duplicates)
	fmt.Fprintf(w, "latency (send to fetch): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms\n",
		r.LatencyMs["p50"], r.LatencyMs["p90"], r.LatencyMs["p99"], r.LatencyMs["p99.9"], r.LatencyMs["p100"])
	if r.ModelKS > 0 {
		fmt.Fprintf(w, "fit to the configured delays (%d exponential hop delays plus the wait for the next poll): Kolmogorov–Smirnov D = %.3f\n", r.ModelHops, r.ModelKS)
	}
	fmt.Fprintf(w, "CPU: nodes %.1f s in all, %.3f ms per delivered packet; load generator %.1f s\n", r.NodeCPUSeconds, r.CPUPerPacketMs, r.LoadgenCPU)
	fmt.Fprintf(w, "cover traffic: %.0f bytes/s sent per client\n", r.BytesPerClientPS)
	names := make([]string, 0, len(r.Processes))
	for n := range r.Processes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		u := r.Processes[n]
		line := fmt.Sprintf("  %-12s CPU %6.1f s   RSS %6.1f → %6.1f MiB", n, u.CPUSeconds, float64(u.RSSStart)/(1<<20), float64(u.RSSEnd)/(1<<20))
		if per, ok := r.ProviderPerConn[n]; ok {
			line += fmt.Sprintf("   %.1f KiB per connected client (%d)", per/1024, perProvider[n])
		}
		fmt.Fprintln(w, line)
	}
}

// makeAccounts makes the simulated clients' accounts, spread over the
// providers in turn, and writes them to the providers' account tables.
func makeAccounts(tn *testnet.Network, n int) ([]loadgen.Account, error) {
	providers := tn.Document.Providers()
	byProvider := map[string][]node.Account{}
	out := make([]loadgen.Account, n)
	for i := range out {
		key, err := wire.GenerateKeypair(cryptoRand{})
		if err != nil {
			return nil, err
		}
		var box mailbox.ID
		cryptoRand{}.Read(box[:])
		p := providers[i%len(providers)].Name
		out[i] = loadgen.Account{LinkKey: key, Mailbox: box, Provider: p}
		byProvider[p] = append(byProvider[p], node.Account{LinkKey: [wire.KeySize]byte(key.Public), Mailbox: box})
	}
	for p, accounts := range byProvider {
		if err := node.AddAccounts(filepath.Join(filepath.Dir(tn.Configs[p]), "accounts.txt"), accounts); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// startAll starts every node as a process of this binary and waits until
// each notifies readiness.
func (lg *loadRun) startAll(ctx context.Context, tn *testnet.Network) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var sockets []*readiness.Socket
	defer func() {
		for _, s := range sockets {
			s.Close()
		}
	}()
	for _, n := range tn.Document.Nodes {
		log, err := os.Create(filepath.Join(filepath.Dir(tn.Configs[n.Name]), "node.log"))
		if err != nil {
			return err
		}
		defer log.Close() // the child has its own descriptor
		ready, err := readiness.Listen()
		if err != nil {
			return err
		}
		sockets = append(sockets, ready)
		cmd := exec.Command(exe, "node", "run", "--config", tn.Configs[n.Name])
		cmd.Env = append(os.Environ(), ready.Env())
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return err
		}
		lg.procs = append(lg.procs, &nodeProc{name: n.Name, role: n.Role.String(), cmd: cmd})
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, p := range lg.procs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sockets[i].Wait(time.Until(deadline)); err != nil {
			return fmt.Errorf("%s did not start (see its node.log): %w", p.name, err)
		}
	}
	return nil
}

func (lg *loadRun) usages() map[string]loadgen.ProcessUsage {
	out := map[string]loadgen.ProcessUsage{}
	for _, p := range lg.procs {
		if u, err := loadgen.Usage(p.cmd.Process.Pid); err == nil {
			out[p.name] = u
		}
	}
	return out
}

func (lg *loadRun) stopAll() {
	for _, p := range lg.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range lg.procs {
		p.cmd.Wait()
	}
}

// loopbackAddresses picks n free loopback ports.
func loopbackAddresses(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// cpuModel is the machine's CPU model name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// report measures the run: deliveries, latency percentiles, each node's
// CPU and memory, and the latency model's fit.
func (lg *loadRun) report(o loadOptions, stats *loadgen.Stats, before, connected map[string]loadgen.ProcessUsage, perProvider map[string]int, selfUsed time.Duration) (loadReport, []loadgen.Curve) {
	after := lg.usages()
	snap := stats.Snapshot()
	lat := stats.Latencies()
	r := loadReport{
		Clients: o.clients, RatePerClient: o.rate, Poll: o.poll.String(), MeanDelay: o.meanDelay.String(), Duration: o.duration.String(),
		Network: fmt.Sprintf("%d providers, %d layers of %d mixes, each a process on loopback", o.providers, o.layers, o.mixes),
		Sent:    snap.Sent, Delivered: snap.Delivered, Lost: snap.Sent - snap.Delivered, Duplicates: snap.Duplicates,
		SentPerSecond: float64(snap.Sent) / o.duration.Seconds(),
		LatencyMs:     map[string]float64{},
		LoadgenCPU:    selfUsed.Seconds(),
		Processes:     map[string]processUsage{}, ProviderPerConn: map[string]float64{},
		Machine:          fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel()),
		BytesPerClientPS: float64(snap.SentBytes) / float64(o.clients) / o.duration.Seconds(),
	}
	for _, p := range []float64{50, 90, 99, 99.9, 100} {
		r.LatencyMs[fmt.Sprintf("p%g", p)] = float64(loadgen.Percentile(lat, p)) / float64(time.Millisecond)
	}
	var nodeCPU time.Duration
	for _, p := range lg.procs {
		b, c, a := before[p.name], connected[p.name], after[p.name]
		nodeCPU += a.CPU - c.CPU
		r.Processes[p.name] = processUsage{CPUSeconds: (a.CPU - c.CPU).Seconds(), RSSStart: b.RSS, RSSEnd: a.RSS}
		if n := perProvider[p.name]; n > 0 {
			r.ProviderPerConn[p.name] = float64(c.RSS-b.RSS) / float64(n)
		}
	}
	r.NodeCPUSeconds = nodeCPU.Seconds()
	if snap.Delivered > 0 {
		r.CPUPerPacketMs = nodeCPU.Seconds() * 1000 / float64(snap.Delivered)
	}
	curves := []loadgen.Curve{{Name: "measured", Sorted: lat}}
	if o.meanDelay > 0 && len(lat) > 0 {
		model := loadgen.WithPollWait(loadgen.ErlangCDF(o.layers+1, o.meanDelay), o.poll)
		r.ModelKS, r.ModelHops = loadgen.KolmogorovSmirnov(lat, model), o.layers+1
		curves = append(curves, loadgen.Curve{Name: fmt.Sprintf("model: %d × Exp(%v) + U(0, %v)", o.layers+1, o.meanDelay, o.poll), CDF: model})
	}
	return r, curves
}

// write writes the latency CDF (-svg) and the report as JSON (-json).
func (lg *loadRun) write(o loadOptions, r loadReport, curves []loadgen.Curve) error {
	if o.svg != "" {
		f, err := os.Create(o.svg)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("backchannel end-to-end latency: %d clients, %g/s each, mean delay %v, poll %v", o.clients, o.rate, o.meanDelay, o.poll)
		xMax := loadgen.Percentile(curves[0].Sorted, 99.5)
		if err := loadgen.WriteCDF(f, title, curves, xMax); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if o.json != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
