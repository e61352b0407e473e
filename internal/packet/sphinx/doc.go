// Package sphinx implements backchannel's packet format: the X25519 Sphinx of
// Katzenpost (Danezis and Goldberg's Sphinx, as Katzenpost parameterizes it in
// its code and test vectors), with LIONESS-BLAKE2b-ChaCha20 as the payload
// cipher instead of AEZ. shared/specs/sphinx.md in the design repository is
// the normative description; this package's tests check it against
// Katzenpost's vectors section by section.
//
// A [Format] fixes a [Geometry] (maximum hops, user payload length). With it a
// client makes forward packets ([Format.NewPacket]) and single-use reply blocks
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
//   - The payload cipher is LIONESS (package lioness) keyed with HKDF-Expand
//     bytes [160:288] (key) and [288:336] (IV); Katzenpost's 48-byte AEZ key
//     slot [112:160] is derived but unused. Every header byte is unchanged.
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
