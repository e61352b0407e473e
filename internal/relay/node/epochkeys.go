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
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
)

// EpochKeys keeps a node's Sphinx keys, one file per epoch and packet format
// (sphinx-epoch-<N>.key for X25519, sphinx-xwing-epoch-<N>.key for X-Wing,
// in its directory, mode 0600): made ahead, when the node first needs to
// publish one in a descriptor, and erased once their epoch and its grace
// period are over. A node makes keys of every format it knows, so that its
// descriptors let the authorities choose (package directory).
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

// Key returns the epoch's Sphinx key of scheme s, making and storing it if
// there is none yet. The caller wipes it.
func (k *EpochKeys) Key(s sphinx.Scheme, epoch uint64) (*sphinx.PrivateKey, error) {
	name, kind := keyfile.SphinxFile(s, epoch)
	path := filepath.Join(k.dir, name)
	secret, err := keyfile.ReadX25519(path, kind)
	defer clear(secret[:])
	if errors.Is(err, os.ErrNotExist) {
		if _, err = io.ReadFull(k.rand, secret[:]); err != nil {
			return nil, fmt.Errorf("node: failed to read randomness: %w", err)
		}
		err = keyfile.Write(path, kind, secret[:])
	}
	if err != nil {
		return nil, err
	}
	return sphinx.NewPrivateKey(s, &secret)
}

// Load returns the epoch's Sphinx key of scheme s if one is stored; an error
// wrapping os.ErrNotExist says there is none. The caller wipes it.
func (k *EpochKeys) Load(s sphinx.Scheme, epoch uint64) (*sphinx.PrivateKey, error) {
	return keyfile.ReadSphinx(k.dir, s, epoch)
}

// Path returns the file of an epoch's key of scheme s.
func (k *EpochKeys) Path(s sphinx.Scheme, epoch uint64) (string, keyfile.Kind) {
	name, kind := keyfile.SphinxFile(s, epoch)
	return filepath.Join(k.dir, name), kind
}

// Descriptor returns the node's public keys for epoch and the next, of every
// scheme, made now if they do not exist yet.
func (k *EpochKeys) Descriptor(epoch uint64) ([]directory.SphinxKeys, error) {
	var out []directory.SphinxKeys
	for _, s := range []sphinx.Scheme{sphinx.X25519, sphinx.XWing} {
		var pair [2]*sphinx.PublicKey
		for i := range pair {
			key, err := k.Key(s, epoch+uint64(i))
			if err != nil {
				return nil, err
			}
			pair[i] = key.Public()
			key.Wipe()
		}
		out = append(out, directory.SphinxKeys{Current: pair[0], Next: pair[1]})
	}
	return out, nil
}

// ForDocument returns the key doc gives this node (self), of the document's
// packet format, if the node holds it.
func (k *EpochKeys) ForDocument(doc *directory.Document, self *directory.Node) (*sphinx.PrivateKey, error) {
	s := doc.Parameters.Geometry.Scheme
	key, err := k.Load(s, doc.Epoch)
	if err != nil {
		return nil, fmt.Errorf("no %v Sphinx key for epoch %d: %w", s, doc.Epoch, err)
	}
	if !key.Public().Equal(self.SphinxKey) {
		key.Wipe()
		path, _ := k.Path(s, doc.Epoch)
		return nil, fmt.Errorf("the document of epoch %d gives this node a Sphinx key other than %s", doc.Epoch, path)
	}
	return key, nil
}

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
			name, ok = strings.CutPrefix(e.Name(), "sphinx-xwing-epoch-")
		}
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
