package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Identity encoding, version 1 (secret: store it only sealed, see package
// vault):
//
//	"bcident" | u8 version | identity DH key [32] | Ed25519 seed [32]
//	| prekey pair | provider [32] | mailbox [32]
//	| u16 retired count | (prekey pair | u64 retired, Unix seconds) per retired pair
//
// where a prekey pair is u32 ID | u64 created | X25519 key [32] | u32 ID |
// u64 created | ML-KEM-768 seed [64].
const (
	identityMagic   = "bcident"
	identityVersion = 1
	maxRetired      = 64
)

// MarshalBinary encodes the identity's secrets.
func (id *Identity) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(identityMagic))
	b.AddUint8(identityVersion)
	b.AddBytes(id.DH.Bytes())
	b.AddBytes(id.Signing.Seed())
	addPair(&b, &id.Prekey, &id.PQPrekey)
	b.AddBytes(id.Provider[:])
	b.AddBytes(id.Mailbox[:])
	if len(id.Retired) > maxRetired {
		return nil, fmt.Errorf("identity: %d retired prekey pairs, at most %d", len(id.Retired), maxRetired)
	}
	b.AddUint16(uint16(len(id.Retired)))
	for i := range id.Retired {
		r := &id.Retired[i]
		addPair(&b, &r.Prekey, &r.PQPrekey)
		b.AddUint64(uint64(r.Retired.Unix()))
	}
	return b.Bytes()
}

func addPair(b *cryptobyte.Builder, p *SignedPrekey, q *SignedPQPrekey) {
	b.AddUint32(p.ID)
	b.AddUint64(uint64(p.Created.Unix()))
	b.AddBytes(p.Key.Bytes())
	b.AddUint32(q.ID)
	b.AddUint64(uint64(q.Created.Unix()))
	b.AddBytes(q.Key.Bytes())
}

// ParseIdentity decodes an identity strictly. Errors wrap ErrIdentity.
func ParseIdentity(data []byte) (*Identity, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	if !s.ReadBytes(&magic, len(identityMagic)) || string(magic) != identityMagic {
		return nil, fmt.Errorf("%w: not an identity", ErrIdentity)
	}
	if !s.ReadUint8(&version) || version != identityVersion {
		return nil, fmt.Errorf("%w: identity version %d, this program reads version %d", ErrIdentity, version, identityVersion)
	}
	id := &Identity{}
	var dh, seed []byte
	if !s.ReadBytes(&dh, 32) || !s.ReadBytes(&seed, ed25519.SeedSize) {
		return nil, fmt.Errorf("%w: truncated", ErrIdentity)
	}
	var err error
	if id.DH, err = ecdh.X25519().NewPrivateKey(dh); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	id.Signing = ed25519.NewKeyFromSeed(seed)
	if err := readPair(&s, &id.Prekey, &id.PQPrekey); err != nil {
		return nil, err
	}
	var count uint16
	if !s.CopyBytes(id.Provider[:]) || !s.CopyBytes(id.Mailbox[:]) || !s.ReadUint16(&count) || count > maxRetired {
		return nil, fmt.Errorf("%w: truncated", ErrIdentity)
	}
	for range count {
		var r Retired
		var retired uint64
		if err := readPair(&s, &r.Prekey, &r.PQPrekey); err != nil {
			return nil, err
		}
		if !s.ReadUint64(&retired) || retired > 1<<62 {
			return nil, fmt.Errorf("%w: truncated", ErrIdentity)
		}
		r.Retired = time.Unix(int64(retired), 0).UTC()
		id.Retired = append(id.Retired, r)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the identity", ErrIdentity, len(s))
	}
	return id, nil
}

func readPair(s *cryptobyte.String, p *SignedPrekey, q *SignedPQPrekey) error {
	var pCreated, qCreated uint64
	var key, seed []byte
	if !s.ReadUint32(&p.ID) || !s.ReadUint64(&pCreated) || !s.ReadBytes(&key, 32) ||
		!s.ReadUint32(&q.ID) || !s.ReadUint64(&qCreated) || !s.ReadBytes(&seed, mlkem.SeedSize) ||
		pCreated > 1<<62 || qCreated > 1<<62 {
		return fmt.Errorf("%w: truncated prekeys", ErrIdentity)
	}
	var err error
	if p.Key, err = ecdh.X25519().NewPrivateKey(key); err != nil {
		return fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	if q.Key, err = mlkem.NewDecapsulationKey768(seed); err != nil {
		return fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	p.Created = time.Unix(int64(pCreated), 0).UTC()
	q.Created = time.Unix(int64(qCreated), 0).UTC()
	return nil
}
