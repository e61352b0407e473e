package e2e

import (
	"testing"

	"github.com/backchannel/backchannel/internal/base/config"
)

// editNodeConfig changes a node's configuration file through its type, as
// an operator's tool would, never by editing its text.
func editNodeConfig(t testing.TB, path string, edit func(*config.Node)) {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := config.Write(path, "edited by a test", c); err != nil {
		t.Fatal(err)
	}
}

// editAuthorityConfig changes an authority's configuration file through its
// type.
func editAuthorityConfig(t testing.TB, path string, edit func(*config.Authority)) {
	t.Helper()
	c, err := config.LoadAuthority(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := config.Write(path, "edited by a test", c); err != nil {
		t.Fatal(err)
	}
}
