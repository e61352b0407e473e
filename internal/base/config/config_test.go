package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
		"half geometry": fmt.Sprintf("version = 1\nauthorities = [%q]\npayload = 3200\n", key) + provider,
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

// TestWriteRoundTrip checks that what Write writes, Load reads back as the
// same values, for each kind of file.
func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	node := &Node{
		Version: Version,
		Node: NodeSection{Name: "mix-1-a", Role: "mix", Address: "127.0.0.1:1", Listen: "127.0.0.1:2", Pprof: true,
			DrainTimeout: Duration{500 * time.Millisecond}},
		Directory: Directory{Authorities: []string{authority}, AuthorityURLs: []string{"http://127.0.0.1:3"}},
		Provider:  Provider{ClientPacketRate: 2.5},
	}
	path := filepath.Join(dir, "node.toml")
	if err := Write(path, "a node\nof the test", node); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	node.applyDefaults()
	node.dir = dir
	if !reflect.DeepEqual(got, node) {
		t.Fatalf("read back\n%+v\nwrote\n%+v", got, node)
	}
	text, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(text), "# a node\n# of the test\n") {
		t.Fatalf("the comment is not at the top:\n%s", text)
	}

	auth := &Authority{
		Version:    Version,
		Authority:  AuthoritySection{Listen: "127.0.0.1:4", Genesis: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Epoch: Duration{time.Minute}, Admitted: []string{authority}},
		Parameters: ParametersTable{Layers: 3, MeanDelay: Duration{time.Millisecond}, PollInterval: Duration{time.Second}, MaxHops: 5, Payload: 2048, SendRate: 1.5},
	}
	path = filepath.Join(dir, "authority.toml")
	if err := Write(path, "", auth); err != nil {
		t.Fatal(err)
	}
	gotAuth, err := LoadAuthority(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth.Authority.Listen != auth.Authority.Listen || !gotAuth.Authority.Genesis.Equal(auth.Authority.Genesis) ||
		gotAuth.Parameters != auth.Parameters || !reflect.DeepEqual(gotAuth.Authority.Admitted, auth.Authority.Admitted) {
		t.Fatalf("read back %+v, wrote %+v", gotAuth, auth)
	}
	if err := Write(path, "", struct{}{}); err == nil {
		t.Fatal("wrote a type that is no configuration")
	}
}
