package smp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// contextLabel opens every mutual-interest context.
const contextLabel = "backchannel/mutual-interest/v1"

// Context computes a check's context C (shared/specs/mutual-interest.md):
//
//	C = SHA-256(label ‖ session ID ‖ both identity fingerprints, lower first
//	            ‖ check ID ‖ SHA-256(question))
//
// each field length-prefixed. Both parties compute the same C whichever of
// them asks; binding the session and both fingerprints means a party in the
// middle cannot pass the check, and a fresh check ID for every question
// keeps answers to one check from serving another.
func Context(sessionID, fingerprintA, fingerprintB, checkID []byte, question string) []byte {
	if bytes.Compare(fingerprintB, fingerprintA) < 0 {
		fingerprintA, fingerprintB = fingerprintB, fingerprintA
	}
	q := sha256.Sum256([]byte(question))
	h := sha256.New()
	for _, part := range [][]byte{[]byte(contextLabel), sessionID, fingerprintA, fingerprintB, checkID, q[:]} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		h.Write(part)
	}
	return h.Sum(nil)
}
