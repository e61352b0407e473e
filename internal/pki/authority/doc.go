// Package authority is the directory authorities' logic: the descriptors
// nodes upload, the tally that keeps what at least a threshold of
// authorities hold, and the deterministic construction of the next epoch's
// network document, which every authority that agrees signs alike.
//
// Server serves the authorities' HTTP API and Client is the nodes' side of
// it. It does not schedule processes or read configuration: that is the
// authority command's job (cmd/backchannel). It decides nothing alone:
// a document is valid only with the signatures of a threshold of the
// configured authorities (directory.Verify).
package authority
