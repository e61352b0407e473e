//go:build faults

package client

import (
	"encoding/hex"
	"fmt"
	"os"
)

// testHooks are what a test build (go build -tags faults) of the client
// lets an end-to-end test do, set from the environment so that no state
// or flag can turn them on:
//
//   - BACKCHANNEL_RECORD_SECRETS: a file to which the client appends, at
//     each start, every X25519 secret it holds — identity key, prekeys
//     (current and retired), link key — one "kind hex" line each: what
//     e2e/TestRecordedTrafficAfterX25519Falls gives the adversary who has
//     broken X25519;
//   - BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES=1: every payload goes in the
//     classical envelope, as the previous release sealed them, so that the
//     same test shows its adversary opens those.
//
// A release build has none of this (testhooks_off.go).
type testHooks struct {
	classical bool
}

func hooksFromEnvironment(c *Client) (testHooks, error) {
	h := testHooks{classical: os.Getenv("BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES") == "1"}
	path := os.Getenv("BACKCHANNEL_RECORD_SECRETS")
	if path == "" {
		return h, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return h, fmt.Errorf("client: BACKCHANNEL_RECORD_SECRETS: %w", err)
	}
	defer f.Close()
	lines := fmt.Sprintf("identity %x\nlink %x\n", c.id.DH.Bytes(), c.linkKey.Private)
	for _, p := range c.id.PrekeyPairs() {
		lines += "prekey " + hex.EncodeToString(p.X25519.Bytes()) + "\n"
	}
	if _, err := f.WriteString(lines); err != nil {
		return h, fmt.Errorf("client: BACKCHANNEL_RECORD_SECRETS: %w", err)
	}
	return h, f.Close()
}

func (h testHooks) classicalEnvelopes() bool { return h.classical }
