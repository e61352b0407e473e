package sphinx

import (
	"encoding/binary"
	"fmt"
	"time"
)

// CommandType is the first byte of an encoded routing command.
type CommandType byte

// The routing command types (Katzenpost core/sphinx/commands). Types 0x80 to
// 0xff are Katzenpost's extension range.
const (
	// CommandNull ends the commands; every byte after it must be zero.
	CommandNull CommandType = 0x00
	// CommandNextNodeHop: forward to the node with this ID (added by packet
	// creation at every hop but the last).
	CommandNextNodeHop CommandType = 0x01
	// CommandRecipient: deliver to this recipient's mailbox.
	CommandRecipient CommandType = 0x02
	// CommandSURBReply: the payload is a reply to the SURB with this ID.
	CommandSURBReply CommandType = 0x03
	// CommandNodeDelay: hold the packet this many milliseconds.
	CommandNodeDelay CommandType = 0x80
)

func (t CommandType) String() string {
	switch t {
	case CommandNull:
		return "null"
	case CommandNextNodeHop:
		return "next-node-hop"
	case CommandRecipient:
		return "recipient"
	case CommandSURBReply:
		return "surb-reply"
	case CommandNodeDelay:
		return "node-delay"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

// Encoded lengths, type byte included.
const (
	nextNodeHopLength = 1 + NodeIDLength + MACLength
	recipientLength   = 1 + RecipientIDLength
	surbReplyLength   = 1 + SURBIDLength
	nodeDelayLength   = 1 + 4
)

// NodeID identifies a node in routing commands.
type NodeID [NodeIDLength]byte

// A Command is one routing command. The implementations are [NextNodeHop],
// [Recipient], [SURBReply] and [NodeDelay]; no other type can be one.
type Command interface {
	// Type is the command's type byte.
	Type() CommandType
	// encodedLength is the length of the encoding, type byte included.
	encodedLength() int
	// appendTo appends the encoding to b.
	appendTo(b []byte) []byte
}

// NextNodeHop tells a hop where to forward the packet, with the MAC the next
// hop will check (the next header's gamma).
type NextNodeHop struct {
	ID  NodeID
	MAC [MACLength]byte
}

// Recipient names the mailbox a packet is for, at the last hop.
type Recipient struct {
	ID [RecipientIDLength]byte
}

// SURBReply marks a packet as a reply to a SURB, at the last hop. The payload
// stays encrypted for the SURB's creator.
type SURBReply struct {
	ID [SURBIDLength]byte
}

// NodeDelay is the time the sender asks a hop to hold the packet, in
// milliseconds.
type NodeDelay struct {
	Milliseconds uint32
}

// Duration is the delay as a time.Duration.
func (d NodeDelay) Duration() time.Duration {
	return time.Duration(d.Milliseconds) * time.Millisecond
}

func (NextNodeHop) Type() CommandType { return CommandNextNodeHop }
func (Recipient) Type() CommandType   { return CommandRecipient }
func (SURBReply) Type() CommandType   { return CommandSURBReply }
func (NodeDelay) Type() CommandType   { return CommandNodeDelay }

func (NextNodeHop) encodedLength() int { return nextNodeHopLength }
func (Recipient) encodedLength() int   { return recipientLength }
func (SURBReply) encodedLength() int   { return surbReplyLength }
func (NodeDelay) encodedLength() int   { return nodeDelayLength }

func (c NextNodeHop) appendTo(b []byte) []byte {
	b = append(b, byte(CommandNextNodeHop))
	b = append(b, c.ID[:]...)
	return append(b, c.MAC[:]...)
}

func (c Recipient) appendTo(b []byte) []byte {
	return append(append(b, byte(CommandRecipient)), c.ID[:]...)
}

func (c SURBReply) appendTo(b []byte) []byte {
	return append(append(b, byte(CommandSURBReply)), c.ID[:]...)
}

func (c NodeDelay) appendTo(b []byte) []byte {
	return binary.BigEndian.AppendUint32(append(b, byte(CommandNodeDelay)), c.Milliseconds)
}

// Commands is one hop's routing commands, in their encoded order.
type Commands []Command

// NextHop returns the next-hop command, if any.
func (cs Commands) NextHop() (NextNodeHop, bool) { return find[NextNodeHop](cs) }

// Recipient returns the recipient command, if any.
func (cs Commands) Recipient() (Recipient, bool) { return find[Recipient](cs) }

// SURBReply returns the SURB-reply command, if any.
func (cs Commands) SURBReply() (SURBReply, bool) { return find[SURBReply](cs) }

// Delay returns the node-delay command, if any.
func (cs Commands) Delay() (NodeDelay, bool) { return find[NodeDelay](cs) }

func find[T Command](cs Commands) (T, bool) {
	for _, c := range cs {
		if t, ok := c.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// AppendCommands appends the encoding of cs to b. It checks nothing: see
// [ParseCommands] for the rules an encoding must follow.
func AppendCommands(b []byte, cs Commands) []byte {
	for _, c := range cs {
		b = c.appendTo(b)
	}
	return b
}

// encodedLength is the length of the encoding of cs.
func (cs Commands) encodedLength() int {
	n := 0
	for _, c := range cs {
		n += c.encodedLength()
	}
	return n
}

// ParseCommands parses one hop's routing information. It is strict: an
// unknown type, a repeated type, a truncated command or a non-zero byte after
// the terminating null command is an error wrapping [ErrCommand]. Commands
// may fill b exactly, with no null command; an empty b holds no commands.
func ParseCommands(b []byte) (Commands, error) {
	cs := make(Commands, 0, 4) // at most one of each type
	var seen [4]bool           // indexed by commandIndex
	for off := 0; off < len(b); {
		t := CommandType(b[off])
		if t == CommandNull {
			for i := off + 1; i < len(b); i++ {
				if b[i] != 0 {
					return nil, fmt.Errorf("%w: non-zero byte at offset %d after the null command", ErrCommand, i)
				}
			}
			break
		}
		idx, ok := commandIndex(t)
		if !ok {
			return nil, fmt.Errorf("%w: unknown command type 0x%02x at offset %d", ErrCommand, byte(t), off)
		}
		if seen[idx] {
			return nil, fmt.Errorf("%w: repeated %s command at offset %d", ErrCommand, t, off)
		}
		seen[idx] = true
		c, n, err := parseCommand(t, b[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: %s command at offset %d: %v", ErrCommand, t, off, err)
		}
		cs = append(cs, c)
		off += n
	}
	return cs, nil
}

func commandIndex(t CommandType) (int, bool) {
	switch t {
	case CommandNextNodeHop:
		return 0, true
	case CommandRecipient:
		return 1, true
	case CommandSURBReply:
		return 2, true
	case CommandNodeDelay:
		return 3, true
	}
	return 0, false
}

// parseCommand parses the command of type t at the start of b, returning it
// and its encoded length.
func parseCommand(t CommandType, b []byte) (Command, int, error) {
	var n int
	switch t {
	case CommandNextNodeHop:
		n = nextNodeHopLength
	case CommandRecipient:
		n = recipientLength
	case CommandSURBReply:
		n = surbReplyLength
	case CommandNodeDelay:
		n = nodeDelayLength
	}
	if len(b) < n {
		return nil, 0, fmt.Errorf("truncated: %d of %d bytes", len(b), n)
	}
	body := b[1:n]
	switch t {
	case CommandNextNodeHop:
		var c NextNodeHop
		copy(c.ID[:], body[:NodeIDLength])
		copy(c.MAC[:], body[NodeIDLength:])
		return c, n, nil
	case CommandRecipient:
		var c Recipient
		copy(c.ID[:], body)
		return c, n, nil
	case CommandSURBReply:
		var c SURBReply
		copy(c.ID[:], body)
		return c, n, nil
	default:
		return NodeDelay{Milliseconds: binary.BigEndian.Uint32(body)}, n, nil
	}
}

// checkHopCommands checks the commands a caller supplies for one hop of a
// path: no next-hop command (packet creation adds it), no repeated type, and
// room for them (and for the next-hop command at a non-terminal hop) in the
// hop's 82 bytes.
func checkHopCommands(cs Commands, terminal bool) error {
	var seen [4]bool
	for _, c := range cs {
		if c == nil {
			return fmt.Errorf("nil command")
		}
		t := c.Type()
		if t == CommandNextNodeHop {
			return fmt.Errorf("a next-hop command is added by packet creation, not supplied")
		}
		idx, _ := commandIndex(t)
		if seen[idx] {
			return fmt.Errorf("repeated %s command", t)
		}
		seen[idx] = true
	}
	n := cs.encodedLength()
	if !terminal {
		n += nextNodeHopLength
	}
	if n > CommandsLength {
		return fmt.Errorf("commands take %d bytes, more than the %d a hop has", n, CommandsLength)
	}
	return nil
}
