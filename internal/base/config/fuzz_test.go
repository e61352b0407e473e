package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzLoad reads arbitrary bytes as each kind of configuration file: a bad
// file is an error, never a panic, and a node file that loads writes back
// (through Write) to one that loads to the same values.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\n[provider]\nretention = \"48h\"\n",
		"version = 1\n[node]\nname = \"mix-1-a\"\nrole = \"mix\"\ndrain_timeout = \"1s\"\n[directory]\nauthorities = [\"" + authority + "\"]\nauthority_urls = [\"http://127.0.0.1:1\"]\n[queues]\npeer = 3\n",
		"version = 1\n[authority]\nlisten = \"127.0.0.1:1\"\ngenesis = 2026-01-01T00:00:00Z\nepoch = \"1m\"\n[parameters]\nlayers = 3\nmax_hops = 5\npayload = 2048\npoll_interval = \"1s\"\n",
		"version = 1\nauthorities = [\"" + authority + "\"]\n[[provider]]\nname = \"p\"\naddress = \"a:1\"\nlink_key = \"" + authority + "\"\nidentity_key = \"" + authority + "\"\n",
		"version = \n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "in.toml")
		if err := os.WriteFile(path, text, 0o600); err != nil {
			t.Fatal(err)
		}
		LoadAuthority(path)
		LoadNetwork(path)
		node, err := Load(path)
		if err != nil {
			return
		}
		again := filepath.Join(dir, "again.toml")
		if err := Write(again, "", node); err != nil {
			t.Fatalf("a loaded file does not write: %v", err)
		}
		back, err := Load(again)
		if err != nil {
			t.Fatalf("a written file does not load: %v", err)
		}
		if !reflect.DeepEqual(back, node) {
			t.Fatalf("read back\n%+v\nwrote\n%+v", back, node)
		}
	})
}
