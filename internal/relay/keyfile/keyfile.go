// Package keyfile reads and writes backchannel's secret key files: a node's
// Ed25519 identity key, its X25519 link key and its Sphinx keys (X25519 and
// X-Wing). Keys
// live in files, never on command lines (where other users of the machine can
// read them).
//
// A key file is one PEM block whose type names the kind of key, with a
// "Version: 1" header. Files are written with mode 0600 (atomically, through a
// temporary file and a rename) and refused on reading if anyone but the owner
// may read them, as ssh does.
package keyfile

import (
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// Kind is the kind of key a file holds.
type Kind string

const (
	// Identity is a node's long-term Ed25519 identity key (its 32-byte seed).
	Identity Kind = "BACKCHANNEL IDENTITY KEY"
	// Link is an X25519 link key for Noise handshakes.
	Link Kind = "BACKCHANNEL LINK KEY"
	// Sphinx is an X25519 Sphinx key for one epoch.
	Sphinx Kind = "BACKCHANNEL SPHINX KEY"
	// SphinxXWing is an X-Wing Sphinx key for one epoch: its 32-byte seed.
	SphinxXWing Kind = "BACKCHANNEL XWING SPHINX KEY"
)

const (
	versionHeader = "Version"
	version       = "1"
	keySize       = 32
)

// Write writes a 32-byte secret of the given kind to path with mode 0600.
func Write(path string, kind Kind, secret []byte) error {
	if len(secret) != keySize {
		return fmt.Errorf("keyfile: %s of %d bytes, want %d", kind, len(secret), keySize)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: string(kind), Headers: map[string]string{versionHeader: version}, Bytes: secret})
	// The temporary file is made in the key's directory, never in $TMPDIR.
	if err := renameio.WriteFile(path, data, 0o600, renameio.WithStaticPermissions(0o600), renameio.WithTempDir(filepath.Dir(path))); err != nil {
		return fmt.Errorf("keyfile: failed to write %s: %w", path, err)
	}
	return nil
}

// Read reads the 32-byte secret of the given kind from path.
func Read(path string, kind Kind) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyfile: %s is readable by others (mode %v); chmod 600 it", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("keyfile: %s holds no PEM key", path)
	case len(rest) != 0:
		return nil, fmt.Errorf("keyfile: %s has data after its key", path)
	case block.Type != string(kind):
		return nil, fmt.Errorf("keyfile: %s holds a %q, want a %q", path, block.Type, kind)
	case block.Headers[versionHeader] != version:
		return nil, fmt.Errorf("keyfile: %s has key file version %q, want %q", path, block.Headers[versionHeader], version)
	case len(block.Bytes) != keySize:
		return nil, fmt.Errorf("keyfile: %s holds %d key bytes, want %d", path, len(block.Bytes), keySize)
	}
	return block.Bytes, nil
}

// SphinxFile is the name of the file of a node's Sphinx key of scheme s for
// an epoch (sphinx-epoch-<N>.key for X25519, sphinx-xwing-epoch-<N>.key for
// X-Wing), and the kind of key it holds.
func SphinxFile(s sphinx.Scheme, epoch uint64) (string, Kind) {
	if s == sphinx.XWing {
		return fmt.Sprintf("sphinx-xwing-epoch-%d.key", epoch), SphinxXWing
	}
	return fmt.Sprintf("sphinx-epoch-%d.key", epoch), Sphinx
}

// ReadSphinx reads the Sphinx key of scheme s for an epoch from a node's
// key directory (SphinxFile names the file). The caller wipes it.
func ReadSphinx(dir string, s sphinx.Scheme, epoch uint64) (*sphinx.PrivateKey, error) {
	name, kind := SphinxFile(s, epoch)
	secret, err := ReadX25519(filepath.Join(dir, name), kind)
	defer clear(secret[:])
	if err != nil {
		return nil, err
	}
	return sphinx.NewPrivateKey(s, &secret)
}

// ReadIdentity reads an Ed25519 identity key.
func ReadIdentity(path string) (ed25519.PrivateKey, error) {
	seed, err := Read(path, Identity)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	return key, nil
}

// ReadX25519 reads a link or Sphinx key (an X-Wing Sphinx key's seed has the
// same 32 bytes).
func ReadX25519(path string, kind Kind) ([keySize]byte, error) {
	var k [keySize]byte
	b, err := Read(path, kind)
	if err != nil {
		return k, err
	}
	copy(k[:], b)
	clear(b)
	return k, nil
}

// Erase overwrites a key file with zeros in place, syncs it and removes it,
// so that an old Sphinx key does not outlive its grace period on the disk
// (as far as the file system allows: see docs/client.md on journaling and
// wear levelling). A missing file is not an error.
func Erase(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keyfile: failed to erase %s: %w", path, err)
	}
	info, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, info.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("keyfile: failed to erase %s: %w", path, err)
	}
	return nil
}
