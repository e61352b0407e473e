// Package client is a backchannel user's client: it keeps the user's
// identity, contacts, sessions and messages (encrypted at rest in a vault),
// keeps the Loopix cover-traffic schedule, builds Sphinx packets, fetches the
// mailbox, and retransmits every fragment of a message until the recipient
// acknowledges it through the SURB it carried.
//
// # What goes on the wire
//
// Every packet the client sends is one of four, all full-size Sphinx packets
// that enter the network at the user's provider:
//
//   - a fragment of a message, or a session set-up, sealed to the contact
//     (package envelope) with a SURB for its acknowledgement;
//   - an acknowledgement, sent through the SURB that came with a fragment;
//   - a loop packet, which goes round the whole network back to the user's
//     own mailbox (Loopix's loop cover traffic; loops that do not come back
//     are counted and reported: they reveal an active attack);
//   - a drop packet, which goes through the whole network to a random
//     provider, which discards it.
//
// Three Poisson processes with the rates of the network document drive the
// sending: send slots (each carries the next acknowledgement or fragment
// that is due, and a drop packet when none is, so that talking does not
// change the rate), loops and drops. The mailbox is fetched at the
// document's fixed poll interval. The schedule takes an injectable clock and
// random source.
//
// # What is kept
//
// A message is queued → sent (every fragment went out at least once) →
// delivered (every fragment acknowledged) or failed (a fragment went
// unacknowledged through every attempt: shown, never silent). A received
// fragment is stored before it is acknowledged, and the session state
// before a packet sealed with it leaves, so a crash at any moment loses no
// message and never reuses a message key. Each message is delivered to the
// user once, however often its fragments arrive.
//
// It does not run the network (package node), parse the command line or
// serve the local socket (package control and cmd/backchannel).
package client
