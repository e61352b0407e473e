// Package sphinx implements backchannel's packet formats: Katzenpost's two
// Sphinx constructions, with LIONESS-BLAKE2b-ChaCha20 as the payload cipher
// instead of AEZ. shared/specs/sphinx.md in the design repository is the
// normative description; this package's tests check it against Katzenpost's
// vectors section by section.
//
//   - [XWing]: Katzenpost's KEM Sphinx with the X-Wing KEM (ML-KEM-768 and
//     X25519, draft-connolly-cfrg-xwing-kem, through CIRCL). Each hop has its
//     own encapsulation: the header carries the first hop's ciphertext, and
//     each hop's routing information the next hop's, after its 82 bytes of
//     commands; there is no blinding. A recorded header opens only if both
//     ML-KEM-768 and X25519 fall. Checked against vectors made by running
//     Katzenpost's code (X-Wing, and ML-KEM-768 as a second ciphertext
//     length), every hop of every case.
//   - [X25519]: the Sphinx of Danezis and Goldberg as Katzenpost builds it,
//     one group element blinded at every hop. Smaller (476-byte headers for
//     5 hops against 7,164) and classical: kept for networks that choose it
//     and for the previous release's.
//
// The payload layers are the same in both: HKDF-Expand (Katzenpost's KDF,
// no Extract) of the hop's shared secret — the X25519 result, or the KEM's
// shared secret — to 336 bytes, of which [0:128] are Katzenpost's header
// MAC key, header key and IV and AEZ key slot (what the vectors check),
// [160:288] the LIONESS key and [288:336] its IV.
//
// A [Format] fixes a [Geometry] (scheme, maximum hops, user payload length).
// Nodes hold a [PrivateKey] per epoch and publish its [PublicKey]. With a
// Format a client makes forward packets ([Format.NewPacket]) and single-use reply blocks
// ([Format.NewSURB]); whoever holds a SURB replies with
// [Format.NewPacketFromSURB] without learning the path; a node removes one
// layer with [Format.Unwrap]; the SURB's creator reads a reply with
// [Format.DecryptSURBPayload].
//
// Every packet of a geometry has the same length: messages are zero-padded to
// the user payload length, replies included. Message lengths are the next
// layer's business.
//
// # Deviations from Katzenpost
//
//   - Creation of X-Wing packets takes each hop's encapsulation randomness
//     from the reader it is given (64 bytes a hop, X-Wing's derandomised
//     encapsulation), so that tests can make packets deterministically;
//     Katzenpost's draws it from the system inside Encapsulate.
//   - An X-Wing ciphertext whose X25519 part has low order is refused (by
//     comparison with the five low-order points, not a second ladder);
//     X-Wing itself would accept it, leaving ML-KEM alone to protect the hop.
//   - The payload cipher is LIONESS (package lioness) keyed with HKDF-Expand
//     bytes [160:288] (key) and [288:336] (IV); Katzenpost's 48-byte AEZ key
//     slot [80:128] is derived but unused. Every header byte is unchanged.
//   - A SURB carries a 176-byte LIONESS key and IV instead of 64 bytes of AEZ
//     key and nonce, and its decryption token 176 bytes per hop.
//   - Replies from a SURB are padded to the full packet length (Katzenpost does
//     not pad them, which would make replies stand out).
//   - Packet creation multiplies the blinding factors together modulo the
//     group order and multiplies by the cofactor, instead of blinding each
//     shared secret one multiplication at a time. For honest node keys the
//     result is identical (tested differentially); for a key with a
//     small-order component it removes that component instead of leaking bits
//     of the sender's scalars.
//   - Any repeated command type is an error (Katzenpost refuses only repeated
//     next-hop and SURB-reply commands).
//
// # What it does not do
//
// It keeps no state: replay detection, delays and forwarding belong to the
// mix node, which gets the replay tag and the routing commands from
// [Format.Unwrap]. It does not choose paths and does not frame messages.
package sphinx
