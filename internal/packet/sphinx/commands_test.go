package sphinx

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestParseCommandsStrict checks each rule of the command encoding.
func TestParseCommandsStrict(t *testing.T) {
	full := func(b ...[]byte) []byte { // one hop's 82 bytes
		out := bytes.Join(b, nil)
		return append(out, make([]byte, CommandsLength-len(out))...)
	}
	next := append([]byte{0x01}, make([]byte, 64)...)
	rcpt := append([]byte{0x02}, make([]byte, 32)...)
	reply := append([]byte{0x03}, make([]byte, 16)...)
	delay := []byte{0x80, 0, 0, 0x04, 0xd2}

	for _, tc := range []struct {
		name  string
		in    []byte
		count int
		err   string // "" for success
	}{
		{"empty", nil, 0, ""},
		{"all zero", full(), 0, ""},
		{"delay then next hop", full(delay, next), 2, ""},
		{"recipient and reply", full(rcpt, reply), 2, ""},
		{"all four, exactly filled", bytes.Join([][]byte{rcpt, reply, delay, next[:27]}, nil), 0, "truncated"},
		{"no null, exact fit", bytes.Join([][]byte{next, reply}, nil), 2, ""},
		{"unknown type", full([]byte{0x04}), 0, "unknown command type 0x04 at offset 0"},
		{"unknown extension type", full(delay, []byte{0x81}), 0, "unknown command type 0x81 at offset 5"},
		{"repeated next hop", full(next, next[:17]), 0, "repeated next-node-hop command at offset 65"},
		{"repeated delay", full(delay, delay), 0, "repeated node-delay command at offset 5"},
		{"repeated recipient", bytes.Join([][]byte{rcpt, rcpt}, nil), 0, "repeated recipient"},
		{"repeated reply", full(reply, reply), 0, "repeated surb-reply"},
		{"truncated next hop", next[:64], 0, "truncated: 64 of 65 bytes"},
		{"truncated delay", delay[:4], 0, "truncated: 4 of 5 bytes"},
		{"byte after null", full(delay, []byte{0x00, 0x00, 0x01}), 0, "non-zero byte at offset 7"},
		{"last byte after null", append(full(delay)[:81], 0x80), 0, "non-zero byte at offset 81"},
	} {
		cmds, err := ParseCommands(tc.in)
		if tc.err == "" {
			if err != nil || len(cmds) != tc.count {
				t.Errorf("%s: %d commands, %v; want %d, no error", tc.name, len(cmds), err, tc.count)
			}
			continue
		}
		if !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want ErrCommand containing %q", tc.name, err, tc.err)
		}
	}
}

// TestCommandsRoundTrip checks that encoding then parsing gives the commands
// back, and the accessors find each one.
func TestCommandsRoundTrip(t *testing.T) {
	cs := Commands{
		NodeDelay{Milliseconds: 0xdeadbabe},
		Recipient{ID: [32]byte{1, 2, 3}},
		SURBReply{ID: [16]byte{4, 5}},
	}
	b := AppendCommands(nil, cs)
	parsed, err := ParseCommands(append(b, make([]byte, 10)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(cs) {
		t.Fatalf("parsed %d commands, want %d", len(parsed), len(cs))
	}
	for i := range cs {
		if parsed[i] != cs[i] {
			t.Errorf("command %d: %#v, want %#v", i, parsed[i], cs[i])
		}
	}
	if d, ok := parsed.Delay(); !ok || d.Duration().Milliseconds() != 0xdeadbabe {
		t.Errorf("Delay() = %v, %v", d, ok)
	}
	if _, ok := parsed.NextHop(); ok {
		t.Error("NextHop() found a command that is not there")
	}
	for _, ct := range []CommandType{CommandNull, CommandNextNodeHop, CommandRecipient, CommandSURBReply, CommandNodeDelay, 0x42} {
		if ct.String() == "" {
			t.Errorf("CommandType(0x%02x) has no name", byte(ct))
		}
	}
}
