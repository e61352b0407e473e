package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/google/renameio/v2"
)

// Write writes a configuration (a Node, an Authority or a Network) to path
// as TOML, atomically, with comment as its first lines. Configuration files
// are written only this way, by marshalling these types, so that what is
// written is what Load reads.
func Write(path, comment string, v any) error {
	switch v.(type) {
	case *Node, *Authority, *Network:
	default:
		return fmt.Errorf("config: cannot write a %T", v)
	}
	var b bytes.Buffer
	for line := range strings.SplitSeq(strings.TrimSpace(comment), "\n") {
		if line != "" {
			fmt.Fprintf(&b, "# %s\n", line)
		}
	}
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("config: encoding %s: %w", path, err)
	}
	if err := renameio.WriteFile(path, b.Bytes(), 0o600, renameio.WithTempDir(filepath.Dir(path))); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
