// Package session is end-to-end sessions between two backchannel
// identities: the initial key agreement, PQXDH as Signal specifies it ("The
// PQXDH Key Agreement Protocol", revision 1, 2023-05-24) with X25519, SHA-256
// and ML-KEM-768 (crypto/mlkem) — [Initiate] and [Respond] — and then the
// Double Ratchet with header encryption ([Ratchet], see ratchet.go for its
// parameters). It works in memory and knows nothing of the network; keeping
// sessions at rest is the caller's job.
//
// # Deviations from the PQXDH specification
//
//   - Prekeys are signed with a separate Ed25519 key (see package identity),
//     not with the identity key through XEdDSA, which neither Go's standard
//     library nor x/crypto offers.
//   - There are no one-time prekeys: no server hosts them (prekeys come from
//     the contact card). So DH4 never appears, and a responder refuses an
//     initial message whose ephemeral key it has already seen for that
//     prekey ([Guard]), which one-time prekeys would otherwise prevent.
//   - EncodeEC is the raw 32-byte u-coordinate, without the spec's
//     one-byte curve identifier: there is only one curve, and the info
//     string names it.
//   - pqkem is ML-KEM-768 (FIPS 203), not Kyber-1024, as the sessions issue
//     asks; info names it.
package session
