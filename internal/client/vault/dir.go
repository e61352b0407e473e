package vault

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"
)

// Dir keeps a vault on disk: the header in one file and each entry in a
// file of its own, so that a damaged entry loses nothing else. Every file is
// written atomically (a temporary file, fsync, rename). Deleting the header
// (Wipe) makes every entry unreadable.
//
// A Dir holds an exclusive lock (flock) on the directory's lock file from
// open to Close: two processes writing one vault would undo each other's
// writes, and a client cleans up at open what a crash left behind, which
// would be another process's work in progress.
type Dir struct {
	path  string
	vault *Vault
	lock  *os.File
	// officer is the slot whose passphrase opened the vault.
	officer SlotID

	// wmu is held for reading by every write of an entry (seal and file
	// together) and for writing by a re-key's swap of keys and its
	// rewrite of each entry, so that no entry is sealed under a key that
	// is going. Reads (Get) never take it.
	wmu sync.RWMutex
	// hmu serialises changes of the keyring; keyring is guarded by it.
	hmu     sync.Mutex
	keyring *Keyring
}

const (
	headerFile = "vault.header"
	// rekeyFile is the keyring a re-key is moving to, written before the
	// first entry is sealed under its key (rekey.go).
	rekeyFile = "vault.header.next"
	lockFile  = "vault.lock"
)

// ErrInUse: another process has the vault open.
var ErrInUse = errors.New("vault: in use by another process")

// lockDir takes the directory's lock, without waiting.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(path, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (a client daemon, or `backchannel ui`, runs on it)", ErrInUse, path)
		}
		return nil, fmt.Errorf("vault: locking %s: %w", path, err)
	}
	return f, nil
}

// CheckFree reports ErrInUse if another process has the vault in the
// directory path open: for saying so before asking a passphrase.
func CheckFree(path string) error {
	if !Exists(path) {
		return nil
	}
	f, err := lockDir(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// CreateDir makes a new vault in the directory path, which must not hold one
// already.
func CreateDir(path string, rand io.Reader, passphrase []byte, params Params) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if _, err := os.Stat(filepath.Join(path, headerFile)); err == nil {
		return nil, fmt.Errorf("vault: %s already holds a vault", path)
	}
	lock, err := lockDir(path)
	if err != nil {
		return nil, err
	}
	v, k, err := createKeyring(rand, passphrase, params)
	if err != nil {
		lock.Close()
		return nil, err
	}
	d := &Dir{path: path, vault: v, lock: lock, officer: k.Slots[0].ID, keyring: k}
	if err := d.writeKeyring(k); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// ErrNoVault: the directory holds no vault (no header).
var ErrNoVault = errors.New("vault: no vault here")

// Exists reports whether the directory path holds a vault.
func Exists(path string) bool {
	_, err := os.Stat(filepath.Join(path, headerFile))
	return err == nil
}

// OpenDir unlocks the vault in the directory path.
func OpenDir(path string, rand io.Reader, passphrase []byte) (*Dir, error) {
	if !Exists(path) {
		return nil, fmt.Errorf("%w: %s", ErrNoVault, path)
	}
	lock, err := lockDir(path)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: path, lock: lock}
	if err := d.unlock(rand, passphrase); err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

// unlock reads the header and unlocks the vault with passphrase; the
// directory's lock is held. A version 1 header (one passphrase, the
// previous release's) becomes a keyring of one slot for that passphrase.
// A re-key that a crash interrupted is finished first (rekey.go).
func (d *Dir) unlock(rand io.Reader, passphrase []byte) error {
	data, err := os.ReadFile(filepath.Join(d.path, headerFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoVault, d.path)
	}
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if len(data) > len(headerMagic) && data[len(headerMagic)] == formatV1 {
		return d.upgrade(rand, data, passphrase)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return err
	}
	if next, err := readKeyring(filepath.Join(d.path, rekeyFile)); err != nil || next != nil {
		if err != nil {
			return err
		}
		return d.resumeRekey(rand, k, next, passphrase)
	}
	d.vault, d.officer, err = UnlockKeyring(rand, k, passphrase)
	d.keyring = k
	return err
}

// upgrade unlocks a version 1 header and replaces it with a keyring whose
// one slot is that passphrase's (with the header's Argon2id parameters).
func (d *Dir) upgrade(rand io.Reader, data, passphrase []byte) error {
	h, err := ParseHeader(data)
	if err != nil {
		return err
	}
	v, err := Unlock(rand, h, passphrase)
	if err != nil {
		return err
	}
	id, err := newSlotID(rand)
	if err != nil {
		return err
	}
	v.mu.Lock()
	slot, err := v.newSlot(id, passphrase, h.Params)
	v.mu.Unlock()
	if err != nil {
		return err
	}
	k := &Keyring{Slots: []Slot{slot}}
	if err := d.writeKeyring(k); err != nil {
		return fmt.Errorf("vault: upgrading the header to officer slots: %w", err)
	}
	d.vault, d.officer, d.keyring = v, id, k
	return nil
}

// newSlotID draws a random slot ID.
func newSlotID(rand io.Reader) (SlotID, error) {
	var id SlotID
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return id, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	return id, nil
}

// readKeyring reads a keyring file; nil if there is none.
func readKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return ParseKeyring(data)
}

// CheckPassphrase reports which officer's slot passphrase opens in this
// vault (ErrPassphrase if none does), without a second opening of the
// directory: for an officer who proves their passphrase to a vault
// another officer opened.
func (d *Dir) CheckPassphrase(rand io.Reader, passphrase []byte) (SlotID, error) {
	d.hmu.Lock()
	k := d.keyring
	d.hmu.Unlock()
	v, id, err := UnlockKeyring(rand, k, passphrase)
	if err != nil {
		return SlotID{}, err
	}
	defer v.Wipe()
	if !v.Equal(d.vault) {
		return SlotID{}, ErrPassphrase
	}
	return id, nil
}

// Officer returns the slot whose passphrase opened the vault.
func (d *Dir) Officer() SlotID { return d.officer }

// Officers returns the slots of the keyring, in its order.
func (d *Dir) Officers() []SlotID {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	ids := make([]SlotID, len(d.keyring.Slots))
	for i, s := range d.keyring.Slots {
		ids[i] = s.ID
	}
	return ids
}

// writeKeyring writes the header, overwriting the old one's blocks.
func (d *Dir) writeKeyring(k *Keyring) error {
	b, err := k.MarshalBinary()
	if err != nil {
		return err
	}
	return replace(filepath.Join(d.path, headerFile), b)
}

// replace writes a file atomically (a temporary file, fsync, rename), then
// overwrites the old version's blocks in place: otherwise they would keep,
// on the disk, what the new version replaced — the key wrapped under an old
// passphrase, or a ratchet state whose keys must be gone (forward secrecy).
func replace(path string, data []byte) error {
	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vault: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		if old != nil {
			old.Close()
		}
		return err
	}
	if old == nil {
		return nil
	}
	defer old.Close()
	return zeroFile(old)
}

// entryPath names an entry's file after its label, hex-encoded so that any
// label is a safe file name.
func (d *Dir) entryPath(label string) string {
	return filepath.Join(d.path, hex.EncodeToString([]byte(label))+".entry")
}

// Put seals and stores an entry, replacing any earlier one of that label.
func (d *Dir) Put(label string, plaintext []byte) error {
	d.wmu.RLock()
	defer d.wmu.RUnlock()
	sealed, err := d.vault.Seal(label, plaintext)
	if err != nil {
		return err
	}
	return replace(d.entryPath(label), sealed)
}

// ErrNotFound: there is no entry of that label.
var ErrNotFound = errors.New("vault: no such entry")

// Get reads and opens an entry.
func (d *Dir) Get(label string) ([]byte, error) {
	data, err := os.ReadFile(d.entryPath(label))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, label)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return d.vault.Open(label, data)
}

// Delete removes an entry, overwriting its file in place first, so that
// its blocks do not keep the ciphertext for someone who later learns the
// passphrase (as far as the file system and the device allow: see
// docs/client.md on journaling and wear levelling).
func (d *Dir) Delete(label string) error {
	return shred(d.entryPath(label))
}

// shred overwrites a file with zeros in place, syncs it and removes it. A
// missing file is not an error.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	err = zeroFile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// zeroFile overwrites an open file's contents with zeros and syncs it.
func zeroFile(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if _, err := f.WriteAt(make([]byte, info.Size()), 0); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// Wipe destroys the vault: it overwrites the header in place (without the
// wrapped key no entry can be read, whatever copies of them exist, even by
// someone who knows the passphrase), forgets the state key, then
// overwrites and removes every entry.
func (d *Dir) Wipe() error {
	defer d.Close()
	err := shred(filepath.Join(d.path, headerFile))
	if rerr := shred(filepath.Join(d.path, rekeyFile)); err == nil {
		err = rerr
	}
	d.vault.Wipe()
	if err != nil {
		return err
	}
	if err := wipeFiles(d.path); err != nil {
		return err
	}
	return os.Remove(filepath.Join(d.path, lockFile))
}

// WipeFiles overwrites and removes the vault files in the directory path
// (header first), without unlocking it: for wiping a state whose passphrase
// is not at hand. Other files are left alone. A vault another process has
// open is not wiped under it (ErrInUse): that process wipes it.
func WipeFiles(path string) error {
	lock, err := lockDir(path)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := wipeFiles(path); err != nil {
		return err
	}
	return os.Remove(filepath.Join(path, lockFile))
}

func wipeFiles(path string) error {
	if err := shred(filepath.Join(path, headerFile)); err != nil {
		return err
	}
	if err := shred(filepath.Join(path, rekeyFile)); err != nil {
		return err
	}
	names, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	for _, n := range names {
		if isVaultFile(n.Name()) {
			if err := shred(filepath.Join(path, n.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// isVaultFile reports whether a file of the directory is the vault's: an
// entry, or the temporary file of an entry or of the header that a crash
// left behind (renameio names it "." + the file's name + digits).
func isVaultFile(name string) bool {
	if strings.HasSuffix(name, ".entry") {
		return true
	}
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".entry") || strings.HasPrefix(name, "."+headerFile))
}

// Close forgets the state key and lets other processes open the vault.
func (d *Dir) Close() {
	d.vault.Wipe()
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// writeAtomic writes a file through a temporary file in the same
// directory, synced and renamed into place. The directory is named so that
// renameio never puts a secret's temporary file in $TMPDIR.
func writeAtomic(path string, data []byte) error {
	if err := renameio.WriteFile(path, data, 0o600, renameio.WithTempDir(filepath.Dir(path))); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// Labels returns the labels of the entries whose labels start with prefix,
// sorted.
func (d *Dir) Labels(prefix string) ([]string, error) {
	names, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	var out []string
	for _, n := range names {
		name, ok := strings.CutSuffix(n.Name(), ".entry")
		if !ok {
			continue
		}
		label, err := hex.DecodeString(name)
		if err != nil || !strings.HasPrefix(string(label), prefix) {
			continue
		}
		out = append(out, string(label))
	}
	sort.Strings(out)
	return out, nil
}
