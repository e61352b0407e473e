package session

import (
	"crypto/ecdh"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/backchannel/backchannel/internal/base/clock"
)

// Ratchet state encoding, version 1 (to be stored encrypted by the caller):
//
//	"bcratchet" | u8 version | DHs private [32] | u8 has DHr | DHr [32]?
//	| RK [32] | u8 presence bits of CKs, CKr, HKs, HKr, NHKs, NHKr | each present key [32]
//	| u32 Ns | u32 Nr | u32 PN
//	| u16 skipped count | (HK [32] | u32 N | MK [32] | u64 stored, Unix seconds) per key
const (
	stateMagic   = "bcratchet"
	stateVersion = 1
)

// MarshalBinary encodes the ratchet's state. The result holds secrets.
func (r *Ratchet) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(stateMagic))
	b.AddUint8(stateVersion)
	b.AddBytes(r.dhs.Bytes())
	if r.dhr == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		b.AddBytes(r.dhr)
	}
	b.AddBytes(r.rk[:])
	keys := []*[]byte{&r.cks, &r.ckr, &r.hks, &r.hkr, &r.nhks, &r.nhkr}
	var present uint8
	for i, k := range keys {
		if *k != nil {
			present |= 1 << i
		}
	}
	b.AddUint8(present)
	for _, k := range keys {
		if *k != nil {
			b.AddBytes(*k)
		}
	}
	b.AddUint32(r.ns)
	b.AddUint32(r.nr)
	b.AddUint32(r.pn)
	b.AddUint16(uint16(len(r.skipped)))
	for _, s := range r.skipped {
		b.AddBytes(s.hk)
		b.AddUint32(s.n)
		b.AddBytes(s.mk[:])
		b.AddUint64(uint64(s.stored.Unix()))
	}
	return b.Bytes()
}

// UnmarshalRatchet decodes a ratchet state strictly. rand supplies the
// ratchet's future keys.
func UnmarshalRatchet(data []byte, rand io.Reader) (*Ratchet, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	if !s.ReadBytes(&magic, len(stateMagic)) || string(magic) != stateMagic {
		return nil, fmt.Errorf("%w: not a ratchet state", ErrMalformed)
	}
	if !s.ReadUint8(&version) || version != stateVersion {
		return nil, fmt.Errorf("%w: ratchet state version %d, this program reads version %d", ErrMalformed, version, stateVersion)
	}
	r := &Ratchet{rand: rand, clock: clock.Real{}}
	var dhs []byte
	var hasDHr, present uint8
	if !s.ReadBytes(&dhs, 32) || !s.ReadUint8(&hasDHr) || hasDHr > 1 {
		return nil, fmt.Errorf("%w: ratchet state keys", ErrMalformed)
	}
	var err error
	if r.dhs, err = ecdh.X25519().NewPrivateKey(dhs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if hasDHr == 1 {
		var dhr []byte
		if !s.ReadBytes(&dhr, 32) {
			return nil, fmt.Errorf("%w: truncated ratchet state", ErrMalformed)
		}
		r.dhr = append([]byte(nil), dhr...)
	}
	if !s.CopyBytes(r.rk[:]) || !s.ReadUint8(&present) || present >= 1<<6 {
		return nil, fmt.Errorf("%w: ratchet state keys", ErrMalformed)
	}
	for i, k := range []*[]byte{&r.cks, &r.ckr, &r.hks, &r.hkr, &r.nhks, &r.nhkr} {
		if present&(1<<i) == 0 {
			continue
		}
		var key []byte
		if !s.ReadBytes(&key, 32) {
			return nil, fmt.Errorf("%w: truncated ratchet state", ErrMalformed)
		}
		*k = append([]byte(nil), key...)
	}
	var count uint16
	if !s.ReadUint32(&r.ns) || !s.ReadUint32(&r.nr) || !s.ReadUint32(&r.pn) || !s.ReadUint16(&count) || int(count) > MaxStoredSkipped {
		return nil, fmt.Errorf("%w: ratchet state counters", ErrMalformed)
	}
	hks := map[string][]byte{} // skipped keys share header-key slices again
	for range count {
		var hk []byte
		var sk skippedKey
		var stored uint64
		if !s.ReadBytes(&hk, 32) || !s.ReadUint32(&sk.n) || !s.CopyBytes(sk.mk[:]) || !s.ReadUint64(&stored) || stored > 1<<62 {
			return nil, fmt.Errorf("%w: truncated skipped key", ErrMalformed)
		}
		if hks[string(hk)] == nil {
			hks[string(hk)] = append([]byte(nil), hk...)
		}
		sk.hk = hks[string(hk)]
		sk.stored = time.Unix(int64(stored), 0)
		r.skipped = append(r.skipped, sk)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the ratchet state", ErrMalformed, len(s))
	}
	return r, nil
}
