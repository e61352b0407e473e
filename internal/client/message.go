package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/backchannel/backchannel/internal/endtoend/fragment"
)

// ContentKind says what a message holds.
type ContentKind uint8

const (
	// Text is a text message, UTF-8.
	Text ContentKind = 1
	// File is a file, with its name.
	File ContentKind = 2
	// capabilities is the client's own: what the sender's software reads
	// (see announce), never shown.
	capabilities ContentKind = 3

	// The features' kinds (see Feature), from firstFeatureKind up: their
	// messages travel like texts (fragmented, acknowledged, delivered
	// once) but are not shown in the inbox. A new feature takes the next
	// number here.

	// Introduction carries a package intro message.
	Introduction ContentKind = 16
	// Conveyance carries a package convey message.
	Conveyance ContentKind = 17
	// InterestCheck carries a package interest message.
	InterestCheck ContentKind = 18
	// ExpirySetting carries a package expiry message: a conversation's
	// disappearing-messages setting.
	ExpirySetting ContentKind = 19
)

// firstFeatureKind is the first content kind of the features.
const firstFeatureKind = Introduction

func (k ContentKind) String() string {
	switch k {
	case Text:
		return "text"
	case File:
		return "file"
	case capabilities:
		return "capabilities"
	case Introduction:
		return "introduction"
	case Conveyance:
		return "conveyance"
	case InterestCheck:
		return "interest check"
	case ExpirySetting:
		return "disappearing-messages setting"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Content is what a user sends: a text or a file.
type Content struct {
	Kind ContentKind
	// Name is a file's name (empty for a text).
	Name string
	Body []byte
	// TTL, if not zero, is how long the message lives at each end after
	// it is sent or received (disappearing messages), in whole seconds.
	TTL time.Duration
	// Sent is when the sender queued it, by the sender's clock (content
	// version 3; zero from older software).
	Sent time.Time
}

// maxSentMillis bounds a sending time, to keep it a valid time.Time (the
// year 9999).
var maxSentMillis = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()

// MaxTTL bounds a message's time to live.
const MaxTTL = 365 * 24 * time.Hour

// MaxNameLength bounds a file name, in bytes.
const MaxNameLength = 255

// MaxFileSize bounds what one message carries, in bytes.
const MaxFileSize = fragment.MaxMessageSize - 3 - MaxNameLength

// contentVersion is the first byte of an encoded Content, as this
// release writes it to contacts that said they read it (capabilities);
// others get oldContentVersion. Versions 1 (no time to live) and 2 (no
// sending time) are still read. Versions 4 to 6 are version 3's layout;
// a contact that reads 4 says that its software opens envelope version 2
// (readsEnvelopeV2), one that reads 5 that it acknowledges by forward
// packets (readsForwardAcks), one that reads 6 that it takes acks in ack
// channel packets (readsAckBatches).
const (
	contentVersion    = 6
	oldContentVersion = 2
)

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("client: malformed")

// marshal encodes the content, which is what fragments carry, in version
// 3 (or 2, for a contact whose software reads no later):
//
//	u8 version (3 to 6) | u8 kind | u32 time to live, seconds | u64 sent, Unix milliseconds (0: unknown) | u8 name length | name | body
//	u8 version (2) | u8 kind | u32 time to live, seconds | u8 name length | name | body
//
// (version 1 had no time to live). The sending time is the sender's clock
// when the message was queued: the recipient shows the sender's order by
// it, whatever order the network delivers in.
func (c *Content) marshal(version int) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 15+len(c.Name)+len(c.Body))
	b = append(b, byte(version), byte(c.Kind))
	b = binary.BigEndian.AppendUint32(b, uint32(c.TTL/time.Second))
	if version >= 3 {
		var ms int64 // 0: not known
		if !c.Sent.IsZero() {
			ms = max(c.Sent.UnixMilli(), 1)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(ms))
	}
	b = append(b, byte(len(c.Name)))
	b = append(b, c.Name...)
	return append(b, c.Body...), nil
}

func (c *Content) validate() error {
	if c.TTL < 0 || c.TTL > MaxTTL || c.TTL%time.Second != 0 {
		return fmt.Errorf("client: a time to live of %v, want whole seconds up to %v", c.TTL, MaxTTL)
	}
	if len(c.Body) > MaxFileSize {
		return fmt.Errorf("client: a message of %d bytes, at most %d", len(c.Body), MaxFileSize)
	}
	switch c.Kind {
	case Text:
		if c.Name != "" {
			return fmt.Errorf("client: a text message has a name (%q)", c.Name)
		}
		if !utf8.Valid(c.Body) {
			return errors.New("client: a text message is not valid UTF-8")
		}
	case File:
		if c.Name == "" || len(c.Name) > MaxNameLength || !utf8.ValidString(c.Name) {
			return fmt.Errorf("client: a file name must be 1 to %d bytes of UTF-8, not %q", MaxNameLength, c.Name)
		}
	case capabilities:
		if c.Name != "" || len(c.Body) != 2 || c.Body[0] != capabilitiesVersion {
			return fmt.Errorf("client: a capabilities message of %d bytes", len(c.Body))
		}
	case Introduction, Conveyance, InterestCheck, ExpirySetting:
		if c.Name != "" {
			return fmt.Errorf("client: a %v message has a name (%q)", c.Kind, c.Name)
		}
	default:
		return fmt.Errorf("client: unknown content kind %d", c.Kind)
	}
	return nil
}

// parseContent decodes a reassembled message strictly.
func parseContent(b []byte) (Content, error) {
	if len(b) < 1 {
		return Content{}, fmt.Errorf("%w: an empty message", ErrMalformed)
	}
	var c Content
	switch b[0] {
	case 1:
		if len(b) < 3 {
			return Content{}, fmt.Errorf("%w: message of %d bytes", ErrMalformed, len(b))
		}
		c.Kind, b = ContentKind(b[1]), b[2:]
	case 2:
		if len(b) < 7 {
			return Content{}, fmt.Errorf("%w: message of %d bytes", ErrMalformed, len(b))
		}
		c.Kind, c.TTL, b = ContentKind(b[1]), time.Duration(binary.BigEndian.Uint32(b[2:6]))*time.Second, b[6:]
	case 3, 4, 5, 6:
		if len(b) < 15 {
			return Content{}, fmt.Errorf("%w: message of %d bytes", ErrMalformed, len(b))
		}
		ms := binary.BigEndian.Uint64(b[6:14])
		if ms > uint64(maxSentMillis) {
			return Content{}, fmt.Errorf("%w: sent at %d ms after 1970", ErrMalformed, ms)
		}
		c.Kind, c.TTL, b = ContentKind(b[1]), time.Duration(binary.BigEndian.Uint32(b[2:6]))*time.Second, b[14:]
		if ms != 0 {
			c.Sent = time.UnixMilli(int64(ms)).UTC()
		}
	default:
		return Content{}, fmt.Errorf("%w: message version %d, this program reads versions 1 to %d", ErrMalformed, b[0], contentVersion)
	}
	n := int(b[0])
	if len(b) < 1+n {
		return Content{}, fmt.Errorf("%w: truncated file name", ErrMalformed)
	}
	c.Name, c.Body = string(b[1:1+n]), append([]byte(nil), b[1+n:]...)
	if err := c.validate(); err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}

// Records inside a session message (its body, KindData):
//
//	u8 type | ...
//
// A hello sets a session up (the first message with an Initial) and says
// why; a fragment carries a piece of a Content.
const (
	recordHello    = 1
	recordFragment = 2
)

// Reasons of a hello.
const (
	// helloNew: the sender has no session with the recipient.
	helloNew = 1
	// helloRestored: the sender restored its state from a backup and lost
	// the session it had; the recipient replaces its own.
	helloRestored = 2
	// helloRekey: the session both hold was set up before envelope keys
	// existed; the recipient replaces it if its own has none either.
	helloRekey = 3
)

// record is a decoded session record.
type record struct {
	typ      uint8
	reason   uint8  // hello
	fragment []byte // fragment
}

func parseRecord(b []byte) (record, error) {
	if len(b) < 1 {
		return record{}, fmt.Errorf("%w: empty session record", ErrMalformed)
	}
	switch b[0] {
	case recordHello:
		if len(b) != 2 || b[1] < helloNew || b[1] > helloRekey {
			return record{}, fmt.Errorf("%w: hello of %d bytes", ErrMalformed, len(b))
		}
		return record{typ: recordHello, reason: b[1]}, nil
	case recordFragment:
		return record{typ: recordFragment, fragment: b[1:]}, nil
	}
	return record{}, fmt.Errorf("%w: session record type %d", ErrMalformed, b[0])
}
