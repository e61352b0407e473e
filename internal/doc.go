// Package internal holds backchannel's packages, grouped by layer, from the
// bottom up:
//
//	base/      clock, configuration files, listeners: what every layer may use
//	packet/    the packet format: Sphinx, LIONESS, the X25519 ladder
//	link/      authenticated links between nodes, and from a client to its provider
//	pki/       the network document and the directory authorities that vote it
//	relay/     mix nodes and providers: replay filter, delays, mailboxes
//	endtoend/  identities, sessions (PQXDH, Double Ratchet), envelopes, fragments
//	client/    the user's client and its state at rest
//	features/  introductions, conveyance, interest checks, disappearing
//	           messages: each a package behind client.Feature
//	ui/        the client's interfaces: the control socket and the web page
//	tools/     what builds, drives and measures networks: testnet, loadgen,
//	           fault injection, readiness, in-process client networks,
//	           test randomness
//
// A package imports only from lower layers and from its own group
// (layers_test.go checks it): relay and endtoend, at the same height, know
// nothing of each other. docs/design.md explains each package.
package internal
