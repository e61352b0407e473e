package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/tools/testnet"
)

// runTestnet is `backchannel testnet`: it writes the files of a whole network.
func runTestnet(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("testnet", stderr)
	dir := fs.String("dir", "testnet", "where to write the network's files")
	layers := fs.Int("layers", 3, "mix layers")
	mixes := fs.Int("mixes", 2, "mixes per layer")
	providers := fs.Int("providers", 2, "providers")
	hosts := fs.String("hosts", "127.0.0.1", "comma-separated hosts, assigned to nodes in turn")
	basePort := fs.Int("base-port", 30000, "link port of the first node; node i uses base-port+i")
	metricsPort := fs.Int("metrics-base-port", 31000, "metrics port of the first node (0: none)")
	meanDelay := fs.Duration("mean-delay", 50*time.Millisecond, "mean per-hop delay senders choose")
	def := testnet.DefaultParameters(3)
	pollInterval := fs.Duration("poll-interval", def.PollInterval, "how often clients fetch their mailbox")
	sendRate := fs.Float64("send-rate", def.SendRate, "clients' send slots per second (Poisson)")
	loopRate := fs.Float64("loop-rate", def.LoopRate, "clients' loop cover packets per second (Poisson)")
	dropRate := fs.Float64("drop-rate", def.DropRate, "clients' drop cover packets per second (Poisson)")
	expireEvery := fs.Duration("expire-every", 0, "how often providers remove expired mailbox packets (0: their default, a minute)")
	authorities := fs.Int("authorities", 1, "directory authorities")
	threshold := fs.Int("threshold", 1, "how many authorities must sign a document")
	authorityAddresses := fs.String("authority-addresses", "", "comma-separated HTTP listen host:port of every authority (default 127.0.0.1:32000+i)")
	epoch := fs.Duration("epoch", 10*time.Minute, "the authorities' epoch length")
	validity := fs.Duration("validity", 30*24*time.Hour, "with -static, how long the network document is valid")
	clockSkew := fs.Duration("clock-skew", 5*time.Minute, "how far nodes' and clients' clocks may be off")
	static := fs.Bool("static", false, "nodes run on one document valid for -validity, without authorities (default: they follow the authorities, epoch after epoch)")
	addresses := fs.String("addresses", "", "comma-separated host:port of every node (providers first, then layer by layer); overrides -hosts and -base-port")
	metricsAddresses := fs.String("metrics-addresses", "", "comma-separated metrics host:port of every node; overrides -metrics-base-port")
	authorityMetrics := fs.String("authority-metrics-addresses", "", "comma-separated metrics host:port of every authority (default, with the default authority addresses and -metrics-base-port: 127.0.0.1:32100+i)")
	format := packetFormatFlag(fs)
	profile := fs.String("profile", "default", "the clients' rates and the mixes' delays: default, or low-bandwidth (a quarter of the cover traffic, 200 ms mean delays, a fetch every 5 s; BENCHMARKS.md figure 5); the rate, delay and poll flags override it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	var params directory.Parameters
	switch *profile {
	case "default":
		params = testnet.DefaultParameters(*layers)
	case "low-bandwidth":
		params = testnet.LowBandwidthParameters(*layers)
	default:
		fmt.Fprintf(stderr, "backchannel: -profile %q: want default or low-bandwidth\n", *profile)
		return 2
	}
	// The flags given explicitly override the profile.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mean-delay":
			params.MeanDelay = *meanDelay
		case "poll-interval":
			params.PollInterval = *pollInterval
		case "send-rate":
			params.SendRate = *sendRate
		case "loop-rate":
			params.LoopRate = *loopRate
		case "drop-rate":
			params.DropRate = *dropRate
		}
	})
	params.Geometry.Scheme = format.scheme
	net, err := testnet.Generate(testnet.Options{
		Dir: *dir, Layers: *layers, MixesPerLayer: *mixes, Providers: *providers,
		Hosts: split(*hosts), BasePort: *basePort, MetricsBasePort: *metricsPort,
		Addresses: split(*addresses), MetricsAddresses: split(*metricsAddresses),
		Parameters: params, Validity: *validity, Follow: !*static, ClockSkew: *clockSkew, ExpireEvery: *expireEvery,
		Authorities: *authorities, Threshold: *threshold, AuthorityAddresses: split(*authorityAddresses), AuthorityMetricsAddresses: split(*authorityMetrics), EpochLength: *epoch,
		Now: time.Now(), Rand: cryptoRand{},
	})
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a network of %d nodes to %s\n", len(net.Names), net.Dir)
	fmt.Fprintln(stdout, "(metrics and /healthz listen on loopback unless given addresses: keep them off public interfaces)")
	for i, c := range net.AuthorityConfigs {
		fmt.Fprintf(stdout, "  authority-%d  http://%s  metrics %s\n      backchannel authority run --config %s\n", i+1, net.AuthorityAddresses[i], orNone(net.AuthorityMetrics[i]), c)
	}
	for _, n := range net.Document.Nodes {
		fmt.Fprintf(stdout, "  %-12s %-8s %s  metrics %s\n      backchannel node run --config %s\n", n.Name, n.Role, n.Address, orNone(net.Metrics[n.Name]), net.Configs[n.Name])
	}
	return 0
}

func orNone(address string) string {
	if address == "" {
		return "none"
	}
	return address
}

// schemeFlag is a -packet-format flag's value.
type schemeFlag struct{ scheme sphinx.Scheme }

func (f *schemeFlag) String() string { return f.scheme.String() }

func (f *schemeFlag) Set(name string) error {
	s, err := sphinx.ParseScheme(name)
	f.scheme = s
	return err
}

// packetFormatFlag adds -packet-format to fs, defaulting to the default
// geometry's.
func packetFormatFlag(fs *flag.FlagSet) *schemeFlag {
	f := &schemeFlag{scheme: sphinx.DefaultGeometry.Scheme}
	fs.Var(f, "packet-format", "the network's packet format: xwing (KEM Sphinx with X-Wing, post-quantum) or x25519 (Sphinx, classical)")
	return f
}
