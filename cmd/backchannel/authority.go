package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/backchannel/backchannel/internal/authority"
	"github.com/backchannel/backchannel/internal/config"
	"github.com/backchannel/backchannel/internal/directory"
	"github.com/backchannel/backchannel/internal/keyfile"
	"github.com/backchannel/backchannel/internal/sphinx"
)

// runAuthority is `backchannel authority run --config FILE`.
func runAuthority(args []string, stdout, stderr io.Writer) int {
	return runServer("authority", args, stderr, serveAuthority)
}

// authorityConfig turns a config file into the authority's settings.
func authorityConfig(cfg *config.Authority) (authority.Config, error) {
	key, err := keyfile.ReadIdentity(cfg.Path(cfg.Authority.IdentityKey))
	if err != nil {
		return authority.Config{}, err
	}
	p := cfg.Parameters
	ac := authority.Config{
		Key: key, Threshold: cfg.Authority.Threshold, Admission: authority.Admission{},
		Genesis: cfg.Authority.Genesis, EpochLength: cfg.Authority.Epoch.Duration,
		Parameters: directory.Parameters{
			Layers: uint8(p.Layers), MeanDelay: p.MeanDelay.Duration, SendRate: p.SendRate, LoopRate: p.LoopRate, DropRate: p.DropRate,
			MixLoopRate: p.MixLoopRate, PollInterval: p.PollInterval.Duration,
			Geometry: sphinx.Geometry{MaxHops: p.MaxHops, UserPayloadLength: p.Payload},
		},
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
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ac.Logger.Info("authority running", "listen", ln.Addr().String(), "threshold", ac.Threshold, "peers", len(ac.Peers), "epoch", ac.EpochLength)
	err = s.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
