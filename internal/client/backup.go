package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/endtoend/identity"
	"github.com/backchannel/backchannel/internal/endtoend/session"
)

// A backup file is
//
//	"bcbackup" | u8 version | u16 header length | vault header | vault entry
//
// where the vault header wraps a fresh key under the backup passphrase
// (Argon2id) and the entry, sealed under that key with the label "backup",
// is the JSON of a backupRecord. It holds the identity (with its prekeys),
// the link key, the network settings, the contacts and the guard against
// replayed session set-ups — not sessions or messages: a ratchet state
// restored from a backup would be stale (its keys already used or erased),
// so sessions are set up again after a restore, and contacts are told why.
const (
	backupMagic   = "bcbackup"
	backupVersion = 1
	backupLabel   = "backup"
)

type backupRecord struct {
	Version  int             `json:"version"`
	Profile  profileRecord   `json:"profile"`
	Contacts []contactRecord `json:"contacts"`
	Guard    []byte          `json:"guard"`
	Written  time.Time       `json:"written"`
}

// ErrBackup is wrapped by every error reading a backup.
var ErrBackup = errors.New("client: backup")

// Backup writes an encrypted backup of the identity, contacts and settings
// to w, under passphrase.
func (c *Client) Backup(w io.Writer, passphrase []byte, params vault.Params) error {
	c.mu.Lock()
	rec := backupRecord{Version: backupVersion, Profile: c.profile, Written: c.cfg.Clock.Now().UTC()}
	guard, err := c.guard.MarshalBinary()
	if err != nil {
		c.unlock()
		return err
	}
	rec.Guard = guard
	for _, ct := range c.contacts {
		ct.mu.Lock()
		r := ct.rec
		ct.mu.Unlock()
		r.Session, r.Notice = nil, ""
		rec.Contacts = append(rec.Contacts, r)
	}
	c.unlock()
	if params == (vault.Params{}) {
		params = vault.DefaultParams()
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	defer clear(plain)
	v, h, err := vault.Create(c.cfg.Rand, passphrase, params)
	if err != nil {
		return err
	}
	defer v.Wipe()
	header, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	sealed, err := v.Seal(backupLabel, plain)
	if err != nil {
		return err
	}
	out := append([]byte(backupMagic), backupVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(header)))
	out = append(append(out, header...), sealed...)
	_, err = w.Write(out)
	return err
}

// readBackup decrypts and checks a backup.
func readBackup(data, passphrase []byte, rand io.Reader) (*backupRecord, error) {
	if len(data) < len(backupMagic)+3 || string(data[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("%w: not a backchannel backup file", ErrBackup)
	}
	if v := data[len(backupMagic)]; v != backupVersion {
		return nil, fmt.Errorf("%w: backup format version %d, this program reads version %d", ErrBackup, v, backupVersion)
	}
	rest := data[len(backupMagic)+1:]
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < n {
		return nil, fmt.Errorf("%w: the file is truncated", ErrBackup)
	}
	h, err := vault.ParseHeader(rest[:n])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	v, err := vault.Unlock(rand, h, passphrase)
	if errors.Is(err, vault.ErrPassphrase) {
		return nil, fmt.Errorf("%w: wrong passphrase (or a damaged file)", ErrBackup)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	defer v.Wipe()
	plain, err := v.Open(backupLabel, rest[n:])
	if err != nil {
		return nil, fmt.Errorf("%w: the file is damaged: %v", ErrBackup, err)
	}
	defer clear(plain)
	var rec backupRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	if rec.Version != backupVersion || rec.Profile.Version != StateVersion {
		return nil, fmt.Errorf("%w: backup record version %d (profile %d), this program reads %d", ErrBackup, rec.Version, rec.Profile.Version, backupVersion)
	}
	if _, err := identity.ParseIdentity(rec.Profile.Identity); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	if err := new(session.Guard).UnmarshalBinary(rec.Guard); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	for _, ct := range rec.Contacts {
		if ct.Version != StateVersion {
			return nil, fmt.Errorf("%w: contact record version %d", ErrBackup, ct.Version)
		}
		if _, err := identity.ParseCard(ct.Card); err != nil {
			return nil, fmt.Errorf("%w: contact %q: %v", ErrBackup, ct.Name, err)
		}
	}
	return &rec, nil
}

// Restore makes a new client state in cfg.Dir (which must not hold one)
// from a backup, under cfg.Passphrase. The backup is read and checked in
// full before anything is written, and the state is built beside cfg.Dir
// and moved into place at the end, so a wrong passphrase or a damaged file
// changes nothing. Every contact's next session tells the contact that it
// replaces one lost in the restore.
func Restore(cfg Config, backup, backupPassphrase []byte) (*Client, error) {
	cfg = withDefaults(cfg)
	if _, err := os.Stat(cfg.Dir); err == nil {
		return nil, fmt.Errorf("client: %s already exists; restore into a new directory", cfg.Dir)
	}
	rec, err := readBackup(backup, backupPassphrase, cfg.Rand)
	if err != nil {
		return nil, err
	}
	params := cfg.VaultParams
	if params == (vault.Params{}) {
		params = vault.DefaultParams()
	}
	tmp := filepath.Join(filepath.Dir(cfg.Dir), "."+filepath.Base(cfg.Dir)+".restoring")
	os.RemoveAll(tmp)
	dir, err := vault.CreateDir(tmp, cfg.Rand, cfg.Passphrase, params)
	if err != nil {
		return nil, err
	}
	st := store{dir}
	fail := func(err error) (*Client, error) {
		dir.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := st.put(profileLabel, rec.Profile); err != nil {
		return fail(err)
	}
	if err := dir.Put("guard", rec.Guard); err != nil {
		return fail(err)
	}
	for _, ct := range rec.Contacts {
		card, _ := identity.ParseCard(ct.Card)
		ct.Restored = true
		if err := st.put(contactLabel(hexKey(card.DHKey)), ct); err != nil {
			return fail(err)
		}
	}
	dir.Close()
	if err := os.Rename(tmp, cfg.Dir); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("client: %w", err)
	}
	return Open(cfg)
}
