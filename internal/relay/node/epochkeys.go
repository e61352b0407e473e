package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/packet/x25519"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// EpochKeys keeps a node's Sphinx keys, one file per epoch
// (sphinx-epoch-<N>.key in its directory, mode 0600): made ahead, when the
// node first needs to publish one in a descriptor, and erased once their
// epoch and its grace period are over.
type EpochKeys struct {
	dir  string
	rand io.Reader
}

// NewEpochKeys keeps keys in dir.
func NewEpochKeys(dir string, rand io.Reader) (*EpochKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node: key directory: %w", err)
	}
	return &EpochKeys{dir: dir, rand: rand}, nil
}

func (k *EpochKeys) path(epoch uint64) string {
	return filepath.Join(k.dir, fmt.Sprintf("sphinx-epoch-%d.key", epoch))
}

// Key returns the epoch's Sphinx key pair, making and storing it if there
// is none yet.
func (k *EpochKeys) Key(epoch uint64) (secret, public [32]byte, err error) {
	secret, err = keyfile.ReadX25519(k.path(epoch), keyfile.Sphinx)
	if errors.Is(err, os.ErrNotExist) {
		if _, err = io.ReadFull(k.rand, secret[:]); err != nil {
			return secret, public, fmt.Errorf("node: failed to read randomness: %w", err)
		}
		err = keyfile.Write(k.path(epoch), keyfile.Sphinx, secret[:])
	}
	if err != nil {
		return secret, public, err
	}
	err = x25519.ScalarBaseMult(&public, &secret)
	return secret, public, err
}

// Load returns the epoch's Sphinx key pair if one is stored; an error
// wrapping os.ErrNotExist says there is none.
func (k *EpochKeys) Load(epoch uint64) (secret, public [32]byte, err error) {
	secret, err = keyfile.ReadX25519(k.path(epoch), keyfile.Sphinx)
	if err != nil {
		return secret, public, err
	}
	err = x25519.ScalarBaseMult(&public, &secret)
	return secret, public, err
}

// Path returns the file of an epoch's key.
func (k *EpochKeys) Path(epoch uint64) string { return k.path(epoch) }

// MakeKeys writes a new node's identity and link keys (identity.key,
// link.key, mode 0600) into dir, refusing to replace existing ones, and
// returns the public identity key.
func MakeKeys(dir string, rand io.Reader) (ed25519.PublicKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for _, name := range []string{"identity.key", "link.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("node: %s already exists; not replacing a node's keys", filepath.Join(dir, name))
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("node: failed to read randomness: %w", err)
	}
	link, err := wire.GenerateKeypair(rand)
	if err != nil {
		return nil, err
	}
	if err := keyfile.Write(filepath.Join(dir, "identity.key"), keyfile.Identity, seed); err != nil {
		return nil, err
	}
	if err := keyfile.Write(filepath.Join(dir, "link.key"), keyfile.Link, link.Private); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// EraseBefore erases the keys of every epoch before the given one.
func (k *EpochKeys) EraseBefore(epoch uint64) error {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return fmt.Errorf("node: key directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "sphinx-epoch-")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".key"), 10, 64)
		if err != nil || n >= epoch {
			continue
		}
		if err := keyfile.Erase(filepath.Join(k.dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
