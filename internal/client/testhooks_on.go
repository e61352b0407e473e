//go:build faults

package client

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// testHooks are what a test build (go build -tags faults) of the client
// lets an end-to-end test do, set from the environment so that no state
// or flag can turn them on:
//
//   - BACKCHANNEL_RECORD_SECRETS: a file to which the client appends, at
//     each start, every X25519 secret it holds — identity key, prekeys
//     (current and retired), link key — and, as the sessions make them,
//     their ephemeral ones (PQXDH's and the ratchet's: every 32 bytes the
//     session package reads from the client's randomness), one "kind hex"
//     line each: what e2e/TestRecordedTrafficAfterX25519Falls gives the
//     adversary who has broken X25519;
//   - BACKCHANNEL_FAULT_CLASSICAL_ENVELOPES=1: every payload goes in the
//     classical envelope, as the previous release sealed them, so that the
//     same test shows its adversary opens those.
//
// A release build has none of this (testhooks_off.go).
type testHooks struct {
	classical bool
	secrets   *recorder // nil: no recording
}

// recorder appends lines to the secrets file.
type recorder struct {
	mu sync.Mutex
	f  *os.File // guarded by mu; open for the client's life
}

func (r *recorder) write(lines string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.f.WriteString(lines)
	return err
}

// recordingReader records every 32-byte block read through it.
type recordingReader struct {
	r   io.Reader
	rec *recorder
}

func (rr recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	var lines strings.Builder
	for i := 0; i+32 <= n; i += 32 {
		fmt.Fprintf(&lines, "ephemeral %x\n", p[i:i+32])
	}
	if lines.Len() > 0 {
		rr.rec.write(lines.String())
	}
	return n, err
}

// sessionRand is the randomness the sessions draw their keys from:
// recorded, if asked.
func (h testHooks) sessionRand(r io.Reader) io.Reader {
	if h.secrets == nil {
		return r
	}
	return recordingReader{r: r, rec: h.secrets}
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
	h.secrets = &recorder{f: f}
	lines := fmt.Sprintf("identity %x\nlink %x\n", c.id.DH.Bytes(), c.linkKey.Private)
	for _, p := range c.id.PrekeyPairs() {
		lines += "prekey " + hex.EncodeToString(p.X25519.Bytes()) + "\n"
	}
	if err := h.secrets.write(lines); err != nil {
		return h, fmt.Errorf("client: BACKCHANNEL_RECORD_SECRETS: %w", err)
	}
	return h, nil
}

func (h testHooks) classicalEnvelopes() bool { return h.classical }
