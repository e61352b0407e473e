package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/backchannel/backchannel/internal/client/vault"
)

// The client's state is kept in the vault as labelled entries. Every label
// is made here, by a table, and nowhere else:
//
//	profile                    the user's keys and network (profileRecord)
//	guard                      the session guard (replayed Initials)
//	received                   IDs of messages delivered (receivedRecord)
//	officers                   the identity's officers and roles (officersRecord)
//	contact/<identity key hex> a contact and its session (contactRecord)
//	out/<id hex>               a sent message's state (outRecord)
//	body/<id hex>              its encoded content, until delivered or failed
//	sent/<id hex>              a sent text, for the conversation view
//	in/<id hex>                a received message (inRecord)
//	frag/<sender>/<id>/<index> a fragment of a message being reassembled
//
// and the features' tables (NewTable), each in its package:
//
//	intro/<id hex>             an introduction (features/intro)
//	desk/<id hex>              a message at the intermediary's desk (features/convey)
//	convey/<id hex>            a message conveyed through an intermediary (features/convey)
//	check/<id hex>             a mutual interest check (features/interest)
const (
	profileLabel  = "profile"
	guardLabel    = "guard"
	receivedLabel = "received"
	officersLabel = "officers"
)

// table is one kind of versioned JSON record, keyed by a 16-byte ID.
type table[T any] struct{ prefix string }

var (
	outRecords = table[outRecord]{"out/"}
	inRecords  = table[inRecord]{"in/"}
)

func (t table[T]) label(id [16]byte) string { return t.prefix + hex.EncodeToString(id[:]) }

// id returns the ID a label of the table names.
func (t table[T]) id(label string) ([16]byte, bool) {
	rest, ok := strings.CutPrefix(label, t.prefix)
	if !ok {
		return [16]byte{}, false
	}
	b, err := hex.DecodeString(rest)
	if err != nil || len(b) != 16 {
		return [16]byte{}, false
	}
	return [16]byte(b), true
}

func (t table[T]) put(s store, id [16]byte, rec T) error { return s.put(t.label(id), rec) }

func (t table[T]) get(s store, id [16]byte, rec *T) error { return s.get(t.label(id), rec) }

func (t table[T]) exists(s store, id [16]byte) bool { return s.exists(t.label(id)) }

func (t table[T]) delete(s store, id [16]byte) error { return s.dir.Delete(t.label(id)) }

// all reads every record of the table, in label order. A record removed
// since the listing is skipped: reads run beside writes.
func (t table[T]) all(s store) ([]T, error) {
	labels, err := s.dir.Labels(t.prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(labels))
	for _, l := range labels {
		var r T
		if err := s.get(l, &r); errors.Is(err, vault.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// blobs is one kind of raw entry (not a record), keyed by a message ID.
type blobs struct{ prefix string }

var (
	bodies    = blobs{"body/"}
	sentTexts = blobs{"sent/"}
)

func (b blobs) label(id [16]byte) string                 { return b.prefix + hex.EncodeToString(id[:]) }
func (b blobs) put(s store, id [16]byte, v []byte) error { return s.dir.Put(b.label(id), v) }
func (b blobs) get(s store, id [16]byte) ([]byte, error) { return s.dir.Get(b.label(id)) }
func (b blobs) delete(s store, id [16]byte) error        { return s.dir.Delete(b.label(id)) }

// ids lists the IDs of the entries of this kind (labels that do not parse
// are left out).
func (b blobs) ids(s store) ([][16]byte, error) {
	labels, err := s.dir.Labels(b.prefix)
	if err != nil {
		return nil, err
	}
	var out [][16]byte
	for _, l := range labels {
		raw, err := hex.DecodeString(strings.TrimPrefix(l, b.prefix))
		if err != nil || len(raw) != 16 {
			continue
		}
		out = append(out, [16]byte(raw))
	}
	return out, nil
}

// Contacts are keyed by their identity key in hex.
const contactPrefix = "contact/"

func contactLabel(key string) string { return contactPrefix + key }

// contactKeys lists the stored contacts' keys.
func contactKeys(s store) ([]string, error) {
	labels, err := s.dir.Labels(contactPrefix)
	if err != nil {
		return nil, err
	}
	for i, l := range labels {
		labels[i] = strings.TrimPrefix(l, contactPrefix)
	}
	return labels, nil
}

// Fragments of messages being reassembled: one entry a fragment, so that a
// crash loses none, under the sender and the message.
const fragmentPrefix = "frag/"

// fragmentLabel names a received fragment.
func fragmentLabel(from string, id [16]byte, index int) string {
	return fmt.Sprintf("%s%05d", fragmentsOf(from, id), index)
}

// fragmentsOf is the label prefix of one message's fragments.
func fragmentsOf(from string, id [16]byte) string {
	return fmt.Sprintf("%s%s/%x/", fragmentPrefix, from, id)
}
