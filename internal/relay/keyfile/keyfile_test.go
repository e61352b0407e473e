package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTripAndRefusals(t *testing.T) {
	dir := t.TempDir()
	seed := bytes.Repeat([]byte{7}, 32)
	path := filepath.Join(dir, "identity.key")
	if err := Write(path, Identity, seed); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	key, err := ReadIdentity(path)
	if err != nil || !key.Equal(ed25519.NewKeyFromSeed(seed)) {
		t.Fatalf("ReadIdentity: %v", err)
	}
	if _, err := ReadX25519(path, Link); err == nil || !strings.Contains(err.Error(), "want a \"BACKCHANNEL LINK KEY\"") {
		t.Fatalf("wrong kind: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Read(path, Identity); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("-----BEGIN BACKCHANNEL LINK KEY-----\nVersion: 2\n\nAAAA\n-----END BACKCHANNEL LINK KEY-----\n"), 0o600)
	if _, err := Read(bad, Link); err == nil || !strings.Contains(err.Error(), "version \"2\"") {
		t.Fatalf("version 2: %v", err)
	}
	if err := Write(filepath.Join(dir, "short.key"), Link, []byte{1}); err == nil {
		t.Fatal("wrote a 1-byte key")
	}
}
