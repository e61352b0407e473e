package config

import (
	"fmt"
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
		"unknown key":   {"version = 1\nfrobnicate = 3\n[directory]\nauthorities = [\"" + authority + "\"]\n", "unknown settings: frobnicate"},
		"misspelt":      {"version = 1\n[directory]\nauthorites = [\"" + authority + "\"]\n", "directory.authorites"},
		"version":       {"version = 2\n[directory]\nauthorities = [\"" + authority + "\"]\n", "this build reads version 1"},
		"no authority":  {"version = 1\n", "at least one authority"},
		"bad key":       {"version = 1\n[directory]\nauthorities = [\"abcd\"]\n", "authorities[0]"},
		"threshold":     {"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\nthreshold = 2\n", "threshold = 2"},
		"duration":      {"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\nclock_skew = \"soon\"\n", "soon"},
		"log level":     {"version = 1\n[node]\nlog_level = \"loud\"\n[directory]\nauthorities = [\"" + authority + "\"]\n", "log_level"},
		"syntax":        {"version = \n", "node.toml"},
		"authority url": {"version = 1\n[directory]\nauthorities = [\"" + authority + "\"]\nauthority_urls = [\"127.0.0.1:32000\"]\n", "authority_urls[0]"},
		"role":          {"version = 1\n[node]\nrole = \"relay\"\n[directory]\nauthorities = [\"" + authority + "\"]\n", "role = \"relay\""},
	} {
		_, err := Load(write(t, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestNetworkBootstrapErrors(t *testing.T) {
	key := strings.Repeat("ab", 32)
	provider := fmt.Sprintf("\n[[provider]]\nname = \"p\"\naddress = \"127.0.0.1:1\"\nlink_key = %q\nidentity_key = %q\n", key, key)
	for name, text := range map[string]string{
		"unknown key":   fmt.Sprintf("version = 1\nauthorities = [%q]\ncolour = 1\n", key) + provider,
		"threshold":     fmt.Sprintf("version = 1\nauthorities = [%q]\nthreshold = 2\n", key) + provider,
		"no provider":   fmt.Sprintf("version = 1\nauthorities = [%q]\n", key),
		"bad key":       "version = 1\nauthorities = [\"zz\"]\n" + provider,
		"version":       fmt.Sprintf("version = 2\nauthorities = [%q]\n", key) + provider,
		"no authority":  "version = 1\n" + provider,
		"provider keys": fmt.Sprintf("version = 1\nauthorities = [%q]\n[[provider]]\nname = \"p\"\naddress = \"a\"\nlink_key = \"00\"\nidentity_key = %q\n", key, key),
	} {
		path := filepath.Join(t.TempDir(), "network.toml")
		os.WriteFile(path, []byte(text), 0o600)
		if _, err := LoadNetwork(path); err == nil {
			t.Errorf("%s: loaded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
