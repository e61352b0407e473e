package session

import (
	"crypto/mlkem"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Initial encoding, version 1:
//
//	u8 version | IK_A [32] | EK_A [32] | u32 prekey ID | u32 PQ prekey ID | CT [1088]
const (
	initialVersion = 1
	// InitialSize is the length of an encoded Initial.
	InitialSize = 1 + 32 + 32 + 4 + 4 + mlkem.CiphertextSize768
)

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("session: malformed message")

// MarshalBinary encodes the Initial.
func (in *Initial) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(initialVersion)
	b.AddBytes(in.IdentityKey[:])
	b.AddBytes(in.EphemeralKey[:])
	b.AddUint32(in.PrekeyID)
	b.AddUint32(in.PQPrekeyID)
	b.AddBytes(in.KEMCiphertext[:])
	return b.Bytes()
}

// UnmarshalBinary decodes an Initial strictly.
func (in *Initial) UnmarshalBinary(data []byte) error {
	if len(data) != InitialSize {
		return fmt.Errorf("%w: initial message of %d bytes, want %d", ErrMalformed, len(data), InitialSize)
	}
	s := cryptobyte.String(data)
	var version uint8
	var out Initial
	if !s.ReadUint8(&version) || version != initialVersion {
		return fmt.Errorf("%w: initial message version %d, this program reads version %d", ErrMalformed, version, initialVersion)
	}
	if !s.CopyBytes(out.IdentityKey[:]) || !s.CopyBytes(out.EphemeralKey[:]) || !s.ReadUint32(&out.PrekeyID) ||
		!s.ReadUint32(&out.PQPrekeyID) || !s.CopyBytes(out.KEMCiphertext[:]) || !s.Empty() {
		return fmt.Errorf("%w: truncated initial message", ErrMalformed)
	}
	*in = out
	return nil
}
