package main

import (
	"crypto/rand"
)

// cryptoRand is crypto/rand as an io.Reader value.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }
