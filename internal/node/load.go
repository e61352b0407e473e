package node

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/backchannel/backchannel/internal/config"
	"github.com/backchannel/backchannel/internal/directory"
	"github.com/backchannel/backchannel/internal/keyfile"
	"github.com/backchannel/backchannel/internal/mailbox"
	"github.com/backchannel/backchannel/internal/wire"
)

// Load builds a node from its config file: keys, the verified network
// document, the account table. listener, if not nil, replaces listening on
// the document's address.
func Load(configPath string, listener net.Listener, logger *slog.Logger, rand io.Reader) (*Node, *config.Node, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, nil, err
	}
	identity, err := keyfile.ReadIdentity(cfg.Path(cfg.Node.IdentityKey))
	if err != nil {
		return nil, nil, err
	}
	linkSecret, err := keyfile.ReadX25519(cfg.Path(cfg.Node.LinkKey), keyfile.Link)
	if err != nil {
		return nil, nil, err
	}
	sphinxKey, err := keyfile.ReadX25519(cfg.Path(cfg.Node.SphinxKey), keyfile.Sphinx)
	if err != nil {
		return nil, nil, err
	}
	link, err := wire.KeypairFromSecret(linkSecret)
	if err != nil {
		return nil, nil, err
	}
	docBytes, err := os.ReadFile(cfg.Path(cfg.Directory.Document))
	if err != nil {
		return nil, nil, fmt.Errorf("network document: %w", err)
	}
	trust := directory.Trust{Threshold: cfg.Directory.Threshold, ClockSkew: cfg.Directory.ClockSkew.Duration}
	for _, a := range cfg.Directory.Authorities {
		key, _ := hex.DecodeString(a) // validated by config.Load
		trust.Authorities = append(trust.Authorities, ed25519.PublicKey(key))
	}
	doc, err := directory.Verify(docBytes, trust, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("network document %s: %w", cfg.Path(cfg.Directory.Document), err)
	}
	nc := Config{
		Identity: identity, LinkKey: link, SphinxKey: sphinxKey, Document: doc, SignedDocument: docBytes,
		Listen: cfg.Node.Listen, Listener: listener, DataDir: cfg.Path(cfg.Node.DataDir),
		Mailbox:        mailbox.Options{Quota: cfg.Provider.MailboxQuota, Retention: cfg.Provider.Retention.Duration},
		ExpireEvery:    cfg.Provider.ExpireEvery.Duration,
		PeerQueue:      cfg.Queues.Peer,
		DelayQueue:     cfg.Queues.Delay,
		ReplayExpected: cfg.Queues.ReplayExpected,
		DrainTimeout:   cfg.Node.DrainTimeout.Duration,
		Logger:         logger,
		Rand:           rand,
	}
	if self := doc.Node(identity.Public().(ed25519.PublicKey)); self != nil && self.Role == directory.RoleProvider {
		if nc.Accounts, err = LoadAccounts(cfg.Path(cfg.Provider.Accounts)); err != nil {
			return nil, nil, err
		}
	}
	n, err := New(nc)
	if err != nil {
		return nil, nil, err
	}
	return n, cfg, nil
}
