package identity

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"io"
	"time"
)

// Retired is a pair of prekeys replaced by newer ones, kept for a grace
// period so that initial messages made from an older card still arrive.
type Retired struct {
	Prekey   SignedPrekey
	PQPrekey SignedPQPrekey
	Retired  time.Time
}

// RotationDue reports whether the prekeys are older than every.
func (id *Identity) RotationDue(now time.Time, every time.Duration) bool {
	return !now.Before(id.Prekey.Created.Add(every))
}

// RotatePrekeys retires the current prekeys and makes new ones (IDs one
// higher), from 32 + 64 bytes of rand. The caller publishes the new card to
// its contacts (inside their sessions) and erases retired prekeys after a
// grace period with [Identity.EraseRetired].
func (id *Identity) RotatePrekeys(rand io.Reader, now time.Time) error {
	var seeds [32 + mlkem.SeedSize]byte
	defer clear(seeds[:])
	if _, err := io.ReadFull(rand, seeds[:]); err != nil {
		return fmt.Errorf("identity: failed to read randomness: %w", err)
	}
	prekey, err := ecdh.X25519().NewPrivateKey(seeds[:32])
	if err != nil {
		return fmt.Errorf("identity: prekey: %w", err)
	}
	pq, err := mlkem.NewDecapsulationKey768(seeds[32:])
	if err != nil {
		return fmt.Errorf("identity: ML-KEM prekey: %w", err)
	}
	created := now.UTC().Truncate(time.Second)
	id.Retired = append(id.Retired, Retired{Prekey: id.Prekey, PQPrekey: id.PQPrekey, Retired: created})
	id.Prekey = SignedPrekey{ID: id.Prekey.ID + 1, Created: created, Key: prekey}
	id.PQPrekey = SignedPQPrekey{ID: id.PQPrekey.ID + 1, Created: created, Key: pq}
	return nil
}

// EraseRetired drops the prekeys retired more than grace ago and returns
// their X25519 prekey IDs (so replay guards can forget them). Go cannot
// overwrite the memory of crypto/ecdh and crypto/mlkem keys; dropping every
// reference is what it allows.
func (id *Identity) EraseRetired(now time.Time, grace time.Duration) []uint32 {
	var erased []uint32
	kept := id.Retired[:0]
	for _, r := range id.Retired {
		if now.Sub(r.Retired) > grace {
			erased = append(erased, r.Prekey.ID)
			continue
		}
		kept = append(kept, r)
	}
	for i := len(kept); i < len(id.Retired); i++ {
		id.Retired[i] = Retired{}
	}
	id.Retired = kept
	return erased
}

// Prekeys returns the prekeys with the given IDs, current or retired.
func (id *Identity) Prekeys(prekeyID, pqPrekeyID uint32) (*SignedPrekey, *SignedPQPrekey, bool) {
	if id.Prekey.ID == prekeyID && id.PQPrekey.ID == pqPrekeyID {
		return &id.Prekey, &id.PQPrekey, true
	}
	for i := range id.Retired {
		r := &id.Retired[i]
		if r.Prekey.ID == prekeyID && r.PQPrekey.ID == pqPrekeyID {
			return &r.Prekey, &r.PQPrekey, true
		}
	}
	return nil, nil, false
}
