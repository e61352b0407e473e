package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestEpochKeys: a key is made once per epoch and read back the same after
// a restart; keys of past epochs are erased, their files overwritten before
// they are removed.
func TestEpochKeys(t *testing.T) {
	dir := t.TempDir()
	k, err := NewEpochKeys(dir, testrand.New(1))
	if err != nil {
		t.Fatal(err)
	}
	s5, p5, err := k.Key(5)
	if err != nil {
		t.Fatal(err)
	}
	s6, _, _ := k.Key(6)
	if s5 == s6 {
		t.Fatal("two epochs share a key")
	}
	again, _ := NewEpochKeys(dir, testrand.New(2))
	if s, p, err := again.Key(5); err != nil || s != s5 || p != p5 {
		t.Fatalf("epoch 5's key changed across a restart (%v)", err)
	}
	info, _ := os.Stat(filepath.Join(dir, "sphinx-epoch-5.key"))
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", info.Mode())
	}
	old, _ := os.Open(filepath.Join(dir, "sphinx-epoch-5.key"))
	defer old.Close()
	if err := k.EraseBefore(6); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sphinx-epoch-5.key")); !os.IsNotExist(err) {
		t.Fatal("epoch 5's key is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "sphinx-epoch-6.key")); err != nil {
		t.Fatal("epoch 6's key was erased too")
	}
	b := make([]byte, 256)
	n, _ := old.Read(b)
	for _, c := range b[:n] {
		if c != 0 {
			t.Fatal("the erased key file was not overwritten")
		}
	}
	if n == 0 {
		t.Fatal("read nothing from the erased file")
	}
}
