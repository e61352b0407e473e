package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
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
	k5, err := k.Key(sphinx.X25519, 5)
	if err != nil {
		t.Fatal(err)
	}
	k6, _ := k.Key(sphinx.X25519, 6)
	x5, err := k.Key(sphinx.XWing, 5)
	if err != nil {
		t.Fatal(err)
	}
	if k5.Public().Equal(k6.Public()) || x5.Scheme() != sphinx.XWing {
		t.Fatal("two epochs share a key, or the X-Wing key is not one")
	}
	again, _ := NewEpochKeys(dir, testrand.New(2))
	for _, want := range []*sphinx.PrivateKey{k5, x5} {
		if got, err := again.Key(want.Scheme(), 5); err != nil || !got.Public().Equal(want.Public()) {
			t.Fatalf("epoch 5's %v key changed across a restart (%v)", want.Scheme(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sphinx-xwing-epoch-5.key")); err != nil {
		t.Fatalf("no X-Wing key file: %v", err)
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
	for _, name := range []string{"sphinx-epoch-5.key", "sphinx-xwing-epoch-5.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("epoch 5's key %s is still there", name)
		}
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
