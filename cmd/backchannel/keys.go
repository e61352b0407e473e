package main

import (
	"crypto/rand"
	"fmt"

	"github.com/backchannel/backchannel/internal/wire"
	"github.com/backchannel/backchannel/internal/x25519"
)

// cryptoRand is crypto/rand as an io.Reader value.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }

// linkKeypair rebuilds a link key pair from its secret.
func linkKeypair(secret [32]byte) (wire.Keypair, error) {
	var pub [32]byte
	if err := x25519.ScalarBaseMult(&pub, &secret); err != nil {
		return wire.Keypair{}, fmt.Errorf("link key: %w", err)
	}
	return wire.Keypair{Private: secret[:], Public: pub[:]}, nil
}
