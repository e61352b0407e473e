package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/base/listen"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/authority"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// runAuthority is `backchannel authority run --config FILE` and
// `backchannel authority keys --dir DIR`.
func runAuthority(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return authorityKeys(args[1:], stdout, stderr)
	}
	return runServer("authority", args, stderr, serveAuthority)
}

// authorityKeys is `backchannel authority keys --dir DIR`: a new
// authority's key (authority.key, mode 0600), and its public half, which
// nodes, clients and the other authorities are configured with.
func authorityKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("authority keys", stderr)
	dir := fs.String("dir", "", "the new authority's directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		return usageOf("authority keys", stderr)
	}
	path := filepath.Join(*dir, "authority.key")
	err := os.MkdirAll(*dir, 0o700)
	if err == nil {
		if _, serr := os.Stat(path); serr == nil {
			err = fmt.Errorf("%s already exists; not replacing an authority's key", path)
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if err == nil {
		_, err = cryptoRand{}.Read(seed)
	}
	if err == nil {
		err = keyfile.Write(path, keyfile.Identity, seed)
	}
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\nauthority key (for nodes', clients' and the other authorities' configs): %s\n",
		path, hex.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)))
	return 0
}

// authorityConfig turns a config file into the authority's settings.
func authorityConfig(cfg *config.Authority) (authority.Config, error) {
	key, err := keyfile.ReadIdentity(cfg.Path(cfg.Authority.IdentityKey))
	if err != nil {
		return authority.Config{}, err
	}
	p := cfg.Parameters
	format, err := packetFormat(p.PacketFormat)
	if err != nil {
		return authority.Config{}, fmt.Errorf("[parameters] packet_format: %w", err)
	}
	ac := authority.Config{
		Key: key, Threshold: cfg.Authority.Threshold, Admission: authority.Admission{},
		Genesis: cfg.Authority.Genesis, EpochLength: cfg.Authority.Epoch.Duration, DocumentDir: cfg.Path(cfg.Authority.Documents),
		Parameters: directory.Parameters{
			Layers: uint8(p.Layers), MeanDelay: p.MeanDelay.Duration, SendRate: p.SendRate, LoopRate: p.LoopRate, DropRate: p.DropRate,
			MixLoopRate: p.MixLoopRate, PollInterval: p.PollInterval.Duration,
			Geometry: sphinx.Geometry{MaxHops: p.MaxHops, UserPayloadLength: p.Payload, Scheme: format},
		},
	}
	if p.NextPacketFormat != "" {
		next, err := packetFormat(p.NextPacketFormat)
		if err != nil {
			return authority.Config{}, fmt.Errorf("[parameters] next_packet_format: %w", err)
		}
		if format == sphinx.XWing && next == sphinx.X25519 {
			// Clients cut the messages they queue into fragments for
			// the format in use: X-Wing's do not fit X25519 packets,
			// whose acknowledgements take room in every packet.
			return authority.Config{}, fmt.Errorf("[parameters] next_packet_format: a network of X-Wing packets cannot move back to X25519 in place (the fragments clients have queued would not fit)")
		}
		ac.FormatChange = &authority.FormatChange{Epoch: p.NextPacketFormatEpoch, Scheme: next}
	}
	for _, k := range cfg.AdmittedKeys() {
		ac.Admission[hex.EncodeToString(k)] = true
	}
	for _, peer := range cfg.Peers {
		k, _ := hex.DecodeString(peer.Key) // checked by LoadAuthority
		ac.Peers = append(ac.Peers, authority.Peer{Key: ed25519.PublicKey(k), URL: peer.URL})
	}
	return ac, nil
}

// packetFormat reads a packet format's name in a configuration file; absent,
// it is X25519, the format of the files of releases before the choice.
func packetFormat(name string) (sphinx.Scheme, error) {
	if name == "" {
		return sphinx.X25519, nil
	}
	return sphinx.ParseScheme(name)
}

// authorityLimits bound the connections an authority holds: its peers
// and the nodes (each uploads a descriptor and fetches documents once an
// epoch) from a few addresses each.
var authorityLimits = listen.Limits{Total: 1024, PerSource: 32}

// serveAuthority runs the authority of configPath until ctx is done.
func serveAuthority(ctx context.Context, configPath string, logOut io.Writer) error {
	cfg, err := config.LoadAuthority(configPath)
	if err != nil {
		return err
	}
	ac, err := authorityConfig(cfg)
	if err != nil {
		return err
	}
	ac.Logger = newLogger(logOut, cfg.Authority.LogLevel)
	s, err := authority.NewServer(ac)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Authority.Listen)
	if err != nil {
		return err
	}
	if cfg.Authority.Metrics != "" {
		closeMetrics, err := serveMetrics(cfg.Authority.Metrics, s.Registry(), s.Health, false)
		if err != nil {
			ln.Close()
			return err
		}
		defer closeMetrics()
	}
	srv := listen.NewHTTPServer(s.Handler(), authority.MaxUpload)
	go srv.Serve(listen.Limit(ln, authorityLimits, nil))
	notifyReady(ac.Logger)
	ac.Logger.Info("authority running", "listen", ln.Addr().String(), "metrics", cfg.Authority.Metrics, "threshold", ac.Threshold, "peers", len(ac.Peers), "epoch", ac.EpochLength)
	err = s.Run(ctx)
	if ctx.Err() != nil {
		ac.Logger.Info("authority stopping")
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
