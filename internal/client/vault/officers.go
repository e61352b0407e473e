package vault

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrPassphraseTaken: another officer's slot opens with that passphrase.
// Each officer's passphrase must be their own: it is what names the officer
// when the vault is unlocked.
var ErrPassphraseTaken = errors.New("vault: that passphrase is another officer's")

// AddOfficer adds a slot for a new officer's passphrase and returns its ID.
func (d *Dir) AddOfficer(rand io.Reader, passphrase []byte, params Params) (SlotID, error) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if len(d.keyring.Slots) >= maxSlots {
		return SlotID{}, fmt.Errorf("vault: at most %d officers", maxSlots)
	}
	if err := d.passphraseFree(passphrase, SlotID{}); err != nil {
		return SlotID{}, err
	}
	id, err := newSlotID(rand)
	if err != nil {
		return SlotID{}, err
	}
	d.vault.mu.Lock()
	slot, err := d.vault.newSlot(id, passphrase, params)
	d.vault.mu.Unlock()
	if err != nil {
		return SlotID{}, err
	}
	k := &Keyring{Slots: append(clone(d.keyring.Slots), slot)}
	if err := d.writeKeyring(k); err != nil {
		return SlotID{}, err
	}
	d.keyring = k
	return id, nil
}

// ChangePassphrase gives an officer's slot a new passphrase (a new key
// pair, salt and parameters), overwriting the old slot on disk; the state
// key and the entries stay as they are.
func (d *Dir) ChangePassphrase(id SlotID, passphrase []byte, params Params) error {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	i := d.keyring.index(id)
	if i < 0 {
		return fmt.Errorf("%w: %x", ErrNoSlot, id)
	}
	if err := d.passphraseFree(passphrase, id); err != nil {
		return err
	}
	d.vault.mu.Lock()
	slot, err := d.vault.newSlot(id, passphrase, params)
	d.vault.mu.Unlock()
	if err != nil {
		return err
	}
	k := &Keyring{Slots: clone(d.keyring.Slots)}
	k.Slots[i] = slot
	if err := d.writeKeyring(k); err != nil {
		return err
	}
	d.keyring = k
	return nil
}

// passphraseFree reports ErrPassphraseTaken if passphrase opens a slot
// other than except; hmu is held.
func (d *Dir) passphraseFree(passphrase []byte, except SlotID) error {
	for i := range d.keyring.Slots {
		s := &d.keyring.Slots[i]
		if s.ID == except {
			continue
		}
		if key, err := s.open(passphrase); err == nil {
			clear(key[:])
			return ErrPassphraseTaken
		}
	}
	return nil
}

// RemoveOfficer removes an officer's slot so that their passphrase opens
// nothing of the current state: a new state key, wrapped for every officer
// who stays (to their slots' public keys), every entry sealed again under
// it, and the old header overwritten. What the removed officer saw or
// copied before stays theirs; so does a copy of the files taken before
// the removal, which their passphrase still opens.
//
// The keyring being moved to is written first (rekeyFile); a crash part
// way leaves entries under both keys, and the next unlock by an officer
// who stays finishes the move (resumeRekey). Writes of entries go on
// meanwhile, under the new key; reads find both.
func (d *Dir) RemoveOfficer(id SlotID) error {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if d.keyring.index(id) < 0 {
		return fmt.Errorf("%w: %x", ErrNoSlot, id)
	}
	if len(d.keyring.Slots) == 1 {
		return ErrLastSlot
	}
	next, err := d.startRekey(id)
	if err != nil {
		return err
	}
	return d.finishRekey(next)
}

// startRekey draws a new state key, writes the keyring without the slot id
// with the new key wrapped for every other slot (rekeyFile), and makes the
// new key the vault's. hmu is held.
func (d *Dir) startRekey(id SlotID) (*Keyring, error) {
	var key [keySize]byte
	defer clear(key[:])
	if _, err := io.ReadFull(d.vault.rand, key[:]); err != nil {
		return nil, fmt.Errorf("vault: failed to read randomness: %w", err)
	}
	next := &Keyring{}
	for _, s := range d.keyring.Slots {
		if s.ID == id {
			continue
		}
		wrapped, err := wrapFor(s.ID, s.PublicKey, &key)
		if err != nil {
			return nil, err
		}
		s.WrappedKey = wrapped
		next.Slots = append(next.Slots, s)
	}
	b, err := next.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(d.path, rekeyFile), b); err != nil {
		return nil, err
	}
	d.wmu.Lock()
	d.vault.beginRekey(&key)
	d.wmu.Unlock()
	return next, nil
}

// resumeRekey unlocks a vault whose re-key a crash interrupted: the
// passphrase must open a slot of the new keyring (a removed officer's
// opens only the old one: refused), and the same slot of the old keyring
// gives the old key, under which some entries may still be sealed. The
// move is then finished.
func (d *Dir) resumeRekey(rand io.Reader, old, next *Keyring, passphrase []byte) error {
	v, id, err := UnlockKeyring(rand, next, passphrase)
	if err != nil {
		return err
	}
	d.vault, d.officer, d.keyring = v, id, old
	if s := old.slot(id); s != nil {
		oldKey, err := s.open(passphrase)
		if err != nil {
			v.Wipe()
			return err
		}
		v.mu.Lock()
		v.old = &oldKey
		v.mu.Unlock()
	}
	return d.finishRekey(next)
}

// finishRekey seals again under the current key every entry that opens
// only under the old one, then writes the new keyring over the header and
// forgets the old key. hmu is held.
func (d *Dir) finishRekey(next *Keyring) error {
	names, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	for _, n := range names {
		name, ok := strings.CutSuffix(n.Name(), ".entry")
		if !ok {
			continue
		}
		label, err := hex.DecodeString(name)
		if err != nil {
			continue
		}
		if err := d.resealEntry(string(label)); err != nil {
			return fmt.Errorf("vault: sealing entry %q under the new key: %w", label, err)
		}
	}
	if err := d.writeKeyring(next); err != nil {
		return err
	}
	d.keyring = next
	d.wmu.Lock()
	d.vault.mu.Lock()
	d.vault.endRekeyLocked()
	d.vault.mu.Unlock()
	d.wmu.Unlock()
	return shred(filepath.Join(d.path, rekeyFile))
}

// resealEntry seals an entry under the current key if it is still under
// the old one; with wmu held, so that no write of the same entry comes
// between the read and the write.
func (d *Dir) resealEntry(label string) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	data, err := os.ReadFile(d.entryPath(label))
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	plain, current, err := d.vault.openReporting(label, data)
	if err != nil || current {
		return err
	}
	defer clear(plain)
	sealed, err := d.vault.Seal(label, plain)
	if err != nil {
		return err
	}
	return replace(d.entryPath(label), sealed)
}

// beginRekey makes key the vault's key, keeping the old one for Open.
func (v *Vault) beginRekey(key *[keySize]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.key
	v.old = &old
	v.key = *key
}

// endRekeyLocked forgets the old key; v.mu is held.
func (v *Vault) endRekeyLocked() {
	if v.old != nil {
		clear(v.old[:])
		v.old = nil
	}
}

// index returns the position of the slot of that ID, or -1.
func (k *Keyring) index(id SlotID) int {
	for i := range k.Slots {
		if k.Slots[i].ID == id {
			return i
		}
	}
	return -1
}

func clone(s []Slot) []Slot { return append([]Slot(nil), s...) }
