// Package expiry is disappearing messages as a feature: a conversation's
// setting (how long its messages live at both ends) and the message that
// carries it to the contact, the later setting winning at both ends
// whatever order they arrive in.
//
// Making messages disappear is the client's: every message carries its
// time to live, and the client deletes it when the time is up and asks its
// provider for a shorter mailbox retention. This package only agrees the
// setting.
package expiry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// Setting is a conversation's disappearing-messages setting as it travels:
// the time to live and when it was set.
//
//	u8 version | u32 seconds | u64 set at (Unix nanoseconds)
type Setting struct {
	TTL   time.Duration
	SetAt time.Time
}

const version = 1

// ErrMalformed is wrapped by every error about a setting that does not
// decode.
var ErrMalformed = errors.New("expiry: malformed setting")

// Marshal encodes a setting.
func (e Setting) Marshal() []byte {
	b := []byte{version}
	b = binary.BigEndian.AppendUint32(b, uint32(e.TTL/time.Second))
	return binary.BigEndian.AppendUint64(b, uint64(e.SetAt.UnixNano()))
}

// Parse decodes a setting strictly.
func Parse(b []byte) (Setting, error) {
	if len(b) != 13 || b[0] != version {
		return Setting{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	e := Setting{TTL: time.Duration(binary.BigEndian.Uint32(b[1:5])) * time.Second, SetAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[5:]))).UTC()}
	if e.TTL > client.MaxTTL {
		return Setting{}, fmt.Errorf("%w: a time to live of %v", ErrMalformed, e.TTL)
	}
	return e, nil
}

// Feature agrees conversations' settings with contacts.
type Feature struct {
	c *client.Client
}

// New registers the feature with the client.
func New(c *client.Client) (*Feature, error) {
	f := &Feature{c: c}
	return f, c.Register(f)
}

// Kinds are the content kinds the feature handles.
func (f *Feature) Kinds() []client.ContentKind { return []client.ContentKind{client.ExpirySetting} }

// Set makes the conversation's messages disappear d after they are
// delivered (at the sender) or received (at the recipient) — 0 turns it
// off. The setting is sent to the contact, whose client adopts it unless it
// holds a later one. The provider is asked to keep the user's unfetched
// packets no longer than the shortest expiry of any conversation.
func (f *Feature) Set(name string, d time.Duration) error {
	if d < 0 || d > client.MaxTTL || d%time.Second != 0 {
		return fmt.Errorf("expiry: a disappearing time of %v, want whole seconds up to %v", d, client.MaxTTL)
	}
	return f.c.Do(func(tx *client.Tx) error {
		ct, err := tx.Contact(name)
		if err != nil {
			return err
		}
		setAt := tx.Now().UTC()
		if !setAt.After(ct.ExpirySetAt) {
			setAt = ct.ExpirySetAt.Add(time.Nanosecond)
		}
		if err := tx.SetExpiry(ct, d, setAt, ""); err != nil {
			return err
		}
		about := fmt.Sprintf("disappearing messages: after %v", d)
		if d == 0 {
			about = "disappearing messages: off"
		}
		return tx.Queue(ct, client.ExpirySetting, Setting{TTL: d, SetAt: setAt}.Marshal(), client.Queuing{About: about})
	})
}

// Receive adopts a contact's setting unless the user's is later.
func (f *Feature) Receive(tx *client.Tx, from client.Contact, _ client.ContentKind, body []byte, _ [16]byte) error {
	e, err := Parse(body)
	if err != nil {
		return err
	}
	if !e.SetAt.After(from.ExpirySetAt) {
		return nil
	}
	notice := fmt.Sprintf("%s set messages to disappear %v after they are delivered or received", from.Name, e.TTL)
	if e.TTL == 0 {
		notice = fmt.Sprintf("%s turned disappearing messages off", from.Name)
	}
	return tx.SetExpiry(from, e.TTL, e.SetAt, notice)
}
