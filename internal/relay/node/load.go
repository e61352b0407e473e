package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/google/renameio/v2"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// Load builds a node from its config file: keys, the verified network
// document, the account table. listener, if not nil, replaces listening on
// the document's address.
//
// With authority URLs configured, a node whose saved document is missing,
// over, or does not list it waits (until ctx is done) for the authorities
// to publish one that does, uploading its descriptors meanwhile; the node
// then follows them (FollowConfig). Without, the saved document is all
// there is.
func Load(ctx context.Context, configPath string, listener net.Listener, logger *slog.Logger, rand io.Reader) (*Node, *config.Node, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	identity, err := keyfile.ReadIdentity(cfg.Path(cfg.Node.IdentityKey))
	if err != nil {
		return nil, nil, err
	}
	linkSecret, err := keyfile.ReadX25519(cfg.Path(cfg.Node.LinkKey), keyfile.Link)
	if err != nil {
		return nil, nil, err
	}
	link, err := wire.KeypairFromSecret(linkSecret)
	if err != nil {
		return nil, nil, err
	}
	keys, err := NewEpochKeys(cfg.Path(cfg.Node.SphinxKeys), rand)
	if err != nil {
		return nil, nil, err
	}
	trust := directory.Trust{Threshold: cfg.Directory.Threshold, ClockSkew: cfg.Directory.ClockSkew.Duration}
	for _, a := range cfg.Directory.Authorities {
		key, _ := hex.DecodeString(a) // validated by config.Load
		trust.Authorities = append(trust.Authorities, ed25519.PublicKey(key))
	}
	docPath := cfg.Path(cfg.Directory.Document)
	self := identity.Public().(ed25519.PublicKey)
	docBytes, doc, docErr := readDocument(docPath, trust)
	if docErr == nil && doc.Node(self) == nil {
		docErr = fmt.Errorf("network document %s: this node's identity key is not in the document of epoch %d", docPath, doc.Epoch)
	}
	var follow *FollowConfig
	if len(cfg.Directory.AuthorityURLs) > 0 {
		follow = &FollowConfig{URLs: cfg.Directory.AuthorityURLs, Trust: trust, Keys: keys, DocumentPath: docPath, Identity: identity}
		var known *directory.Node
		if doc != nil {
			known = doc.Node(self)
		}
		if follow.Self, err = declaration(cfg, self, link, known); err != nil {
			return nil, nil, err
		}
		if docErr != nil {
			logger.Info("joining the network through the authorities", "reason", docErr.Error())
			if docBytes, doc, err = join(ctx, *follow, clock.Real{}, logger); err != nil {
				return nil, nil, err
			}
			if err := renameio.WriteFile(docPath, docBytes, 0o644); err != nil {
				return nil, nil, fmt.Errorf("network document: %w", err)
			}
		}
	} else if docErr != nil {
		return nil, nil, docErr
	}
	sphinxKey, err := keys.ForDocument(doc, doc.Node(self))
	if err != nil {
		return nil, nil, err
	}
	nc := Config{
		Identity: identity, LinkKey: link, SphinxKey: sphinxKey, Document: doc, SignedDocument: docBytes,
		Listen: cfg.Node.Listen, Listener: listener, DataDir: cfg.Path(cfg.Node.DataDir),
		Mailbox:             mailbox.Options{Quota: cfg.Provider.MailboxQuota, Retention: cfg.Provider.Retention.Duration},
		ExpireEvery:         cfg.Provider.ExpireEvery.Duration,
		LinksPerSource:      cfg.Node.LinksPerSource,
		ClassicalLinksUntil: cfg.Node.ClassicalLinksUntilEpoch,
		LinksPerUser:        cfg.Provider.LinksPerUser,
		ClientPacketRate:    cfg.Provider.ClientPacketRate,
		ClientPacketBurst:   cfg.Provider.ClientPacketBurst,
		PeerQueue:           cfg.Queues.Peer,
		DelayQueue:          cfg.Queues.Delay,
		ReplayExpected:      cfg.Queues.ReplayExpected,
		DrainTimeout:        cfg.Node.DrainTimeout.Duration,
		Follow:              follow,
		Logger:              logger,
		Rand:                rand,
	}
	if doc.Node(self).Role == directory.RoleProvider {
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

// readDocument reads and verifies the saved document at the local time.
func readDocument(path string, trust directory.Trust) ([]byte, *directory.Document, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("network document: %w", err)
	}
	doc, err := directory.VerifySignatures(raw, trust)
	if err != nil {
		return nil, nil, fmt.Errorf("network document %s: %w", path, err)
	}
	if _, err := directory.Verify(raw, trust, clock.Real{}.Now()); err != nil {
		// Signed, but not for now: kept for the node's name and address.
		return nil, doc, fmt.Errorf("network document %s: %w", path, err)
	}
	return raw, doc, nil
}

// declaration is what the node tells the authorities about itself: the
// config's [node] name, role and address, or else its entry in the last
// document it knows.
func declaration(cfg *config.Node, identity ed25519.PublicKey, link wire.Keypair, known *directory.Node) (directory.Descriptor, error) {
	d := directory.Descriptor{IdentityKey: identity, Name: cfg.Node.Name, Address: cfg.Node.Address}
	copy(d.LinkKey[:], link.Public)
	switch cfg.Node.Role {
	case "mix":
		d.Role = directory.RoleMix
	case "provider":
		d.Role = directory.RoleProvider
	}
	if known != nil {
		if d.Name == "" {
			d.Name = known.Name
		}
		if d.Address == "" {
			d.Address = known.Address
		}
		if cfg.Node.Role == "" {
			d.Role = known.Role
		}
	}
	if d.Name == "" || d.Address == "" || d.Role == 0 {
		return d, errors.New("config: a node that follows the authorities and is in no document it has needs [node] name, role and address")
	}
	return d, nil
}
