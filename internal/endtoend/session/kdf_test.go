package session

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestRatchetKDFs recomputes each ratchet derivation from the Double
// Ratchet specification's formulas with independent calls.
func TestRatchetKDFs(t *testing.T) {
	// §5.2 KDF_CK: message key = HMAC-SHA256(CK, 0x01), next chain key =
	// HMAC-SHA256(CK, 0x02).
	ck := bytes.Repeat([]byte{7}, 32)
	mac := func(key []byte, b byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte{b})
		return m.Sum(nil)
	}
	wantMK, wantCK := mac(ck, 1), mac(ck, 2)
	next, mk := kdfCK(bytes.Clone(ck))
	if !bytes.Equal(mk[:], wantMK) || !bytes.Equal(next, wantCK) {
		t.Fatal("KDF_CK differs from §5.2")
	}

	// §4.1/§5.2 KDF_RK_HE: HKDF with RK as salt and the DH output as input
	// key material, split into RK, CK and NHK.
	var rk [32]byte
	copy(rk[:], bytes.Repeat([]byte{9}, 32))
	dh := bytes.Repeat([]byte{3}, 32)
	out, err := hkdf.Key(sha256.New, dh, rk[:], rootInfo, 96)
	if err != nil {
		t.Fatal(err)
	}
	newRK, ck2, nhk, err := kdfRK(rk, bytes.Clone(dh))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(newRK[:], out[:32]) || !bytes.Equal(ck2, out[32:64]) || !bytes.Equal(nhk, out[64:]) {
		t.Fatal("KDF_RK_HE differs from the specification's HKDF split")
	}

	// §4.3 RatchetInitAliceHE: RK, CKs, NHKs = KDF_RK_HE(SK, DH(DHs, DHr)),
	// and the first message key is KDF_CK(CKs)'s.
	var sk [KeySize]byte
	copy(sk[:], bytes.Repeat([]byte{5}, 32))
	bobKey, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{11}, 32))
	alice, err := NewInitiatorRatchet(testrand.New(1), sk, bobKey.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	testrand.New(1).Read(seed)
	dhs, _ := ecdh.X25519().NewPrivateKey(seed)
	shared, _ := dhs.ECDH(bobKey.PublicKey())
	init, _ := hkdf.Key(sha256.New, shared, sk[:], rootInfo, 96)
	if !bytes.Equal(alice.rk[:], init[:32]) || !bytes.Equal(alice.cks, init[32:64]) || !bytes.Equal(alice.nhks, init[64:]) {
		t.Fatal("the initiator's first root step differs from §4.3")
	}
	hka, _ := hkdf.Key(sha256.New, sk[:], nil, "backchannel ratchet header keys v1", 64)
	if !bytes.Equal(alice.hks, hka[:32]) || !bytes.Equal(alice.nhkr, hka[32:]) {
		t.Fatal("the shared header keys are not derived from SK as documented")
	}
}
