package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const authority = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	path := write(t, "version = 1\n[directory]\nauthorities = [\""+authority+"\"]\n[provider]\nretention = \"48h\"\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Directory.Threshold != 1 || c.Queues.Peer != 4096 || c.Provider.Retention.Duration != 48*time.Hour {
		t.Fatalf("%+v", c)
	}
	if got := c.Path(c.Node.IdentityKey); got != filepath.Join(filepath.Dir(path), "identity.key") {
		t.Fatalf("identity key path %s", got)
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"unknown key":  {"version = 1\nfrobnicate = 3\n[directory]\nauthorities = [\"" + authority + "\"]\n", "unknown settings: frobnicate"},
		"misspelt":     {"version = 1\n[directory]\nauthorites = [\"" + authority + "\"]\n", "directory.authorites"},
		"version":      {"version = 2\n[directory]\nauthorities = [\"" + authority + "\"]\n", "this build reads version 1"},
		"no authority": {"version = 1\n", "at least one authority"},
		"bad key":      {"version = 1\n[directory]\nauthorities = [\"abcd\"]\n", "authorities[0]"},
		"threshold":    {"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\nthreshold = 2\n", "threshold = 2"},
		"duration":     {"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\nclock_skew = \"soon\"\n", "soon"},
		"log level":    {"version = 1\n[node]\nlog_level = \"loud\"\n[directory]\nauthorities = [\"" + authority + "\"]\n", "log_level"},
		"syntax":       {"version = \n", "node.toml"},
	} {
		_, err := Load(write(t, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
