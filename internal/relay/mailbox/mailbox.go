// Package mailbox is a provider's durable store of packets waiting for its
// users: one mailbox per user, on go.etcd.io/bbolt, so that a packet the
// provider has acknowledged survives a crash.
//
// [Store.Put] returns only once the packet is on disk (bbolt commits with
// fsync; concurrent Puts share a commit). A client fetches the oldest packets
// of its mailbox with [Store.Fetch], which removes nothing, and acknowledges
// them with [Store.Ack] once it has them: a fetch reply lost on the way is
// simply fetched again. Each mailbox has a quota, and packets older than the
// retention period are removed by [Store.Expire].
//
// It stores opaque packets; it does not know who the users are (see the
// provider's account table) or what the packets hold.
package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// IDSize is the length of a mailbox identifier (a Sphinx recipient ID).
const IDSize = 32

// ID identifies a mailbox.
type ID [IDSize]byte

// storeVersion is the layout version kept in the meta bucket; a store with
// another version is refused instead of misread.
const storeVersion = 1

var (
	metaBucket      = []byte("meta")
	versionKey      = []byte("version")
	mailboxesBucket = []byte("mailboxes")
	countsBucket    = []byte("counts")    // mailbox ID → u64 number of packets
	retentionBucket = []byte("retention") // mailbox ID → u64 nanoseconds its owner asked for
)

// Errors from Put.
var (
	// ErrQuota: the mailbox holds its maximum number of packets.
	ErrQuota = errors.New("mailbox: quota reached")
)

// Options configure a Store.
type Options struct {
	// Quota is the most packets one mailbox may hold.
	Quota int
	// Retention is how long an unfetched packet is kept.
	Retention time.Duration
}

// Store is a set of mailboxes in one bbolt file. It is safe for concurrent
// use.
type Store struct {
	db   *bolt.DB
	opts Options
}

// Message is a stored packet with its sequence number in the mailbox.
type Message struct {
	Seq      uint64
	Received time.Time
	Packet   []byte
}

// Open opens or creates the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Quota < 1 || opts.Retention <= 0 {
		return nil, fmt.Errorf("mailbox: quota %d and retention %v must be positive", opts.Quota, opts.Retention)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("mailbox: failed to open %s: %w", path, err)
	}
	// Concurrent Puts and Acks are committed together (one fsync), but
	// each waited up to bbolt's default 10 ms for others to join, which
	// held every client's fetch that acknowledged packets for 10 ms
	// (BenchmarkFetchAndAck: 11.8 ms per poll). One millisecond still
	// gathers what arrives together.
	db.MaxBatchDelay = time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if v := meta.Get(versionKey); v == nil {
			if err := meta.Put(versionKey, []byte{storeVersion}); err != nil {
				return err
			}
		} else if len(v) != 1 || v[0] != storeVersion {
			return fmt.Errorf("store layout version %v, this provider reads version %d", v, storeVersion)
		}
		if _, err := tx.CreateBucketIfNotExists(mailboxesBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(retentionBucket); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(countsBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mailbox: %s: %w", path, err)
	}
	return &Store{db: db, opts: opts}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Put stores packet in mailbox id, durably, and returns its sequence number.
// Concurrent calls are committed together.
func (s *Store) Put(id ID, packet []byte, now time.Time) (uint64, error) {
	var seq uint64
	err := s.db.Batch(func(tx *bolt.Tx) error {
		var err error
		seq, err = s.put(tx, id, packet, now)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrQuota) {
			return 0, err
		}
		return 0, fmt.Errorf("mailbox: failed to store a packet: %w", err)
	}
	return seq, nil
}

// Delivery is one packet for PutMany.
type Delivery struct {
	Mailbox ID
	Packet  []byte
}

// PutMany stores packets in one transaction, durably: one commit (and one
// fsync) for all of them, which is what lets a provider keep up with many
// small deliveries. It returns, for each packet, nil or ErrQuota (that
// packet is not stored, the others are); a failed transaction stores none
// and returns its error.
func (s *Store) PutMany(deliveries []Delivery, now time.Time) ([]error, error) {
	results := make([]error, len(deliveries))
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, d := range deliveries {
			if _, err := s.put(tx, d.Mailbox, d.Packet, now); errors.Is(err, ErrQuota) {
				results[i] = err
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mailbox: failed to store %d packets: %w", len(deliveries), err)
	}
	return results, nil
}

// put stores one packet in tx.
func (s *Store) put(tx *bolt.Tx, id ID, packet []byte, now time.Time) (uint64, error) {
	box, err := tx.Bucket(mailboxesBucket).CreateBucketIfNotExists(id[:])
	if err != nil {
		return 0, err
	}
	n := count(tx, id)
	if n >= uint64(s.opts.Quota) {
		return 0, ErrQuota
	}
	seq, err := box.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := box.Put(seqKey(seq), encodeRecord(now, packet)); err != nil {
		return 0, err
	}
	return seq, setCount(tx, id, n+1)
}

// Fetch returns up to max of the oldest packets in mailbox id, without
// removing them.
func (s *Store) Fetch(id ID, max int) ([]Message, error) {
	var out []Message
	err := s.db.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(mailboxesBucket).Bucket(id[:])
		if box == nil {
			return nil
		}
		c := box.Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			m, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mailbox: failed to fetch: %w", err)
	}
	return out, nil
}

// Ack removes every packet of mailbox id with a sequence number up to and
// including upTo: the client has them.
func (s *Store) Ack(id ID, upTo uint64) error {
	err := s.db.Batch(func(tx *bolt.Tx) error {
		box := tx.Bucket(mailboxesBucket).Bucket(id[:])
		if box == nil {
			return nil
		}
		removed := uint64(0)
		c := box.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			removed++
		}
		return setCount(tx, id, count(tx, id)-removed)
	})
	if err != nil {
		return fmt.Errorf("mailbox: failed to remove acknowledged packets: %w", err)
	}
	return nil
}

// Count returns the number of packets in mailbox id.
func (s *Store) Count(id ID) (int, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = count(tx, id)
		return nil
	})
	return int(n), err
}

// Total returns how many packets all mailboxes hold.
func (s *Store) Total() (int, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(countsBucket).ForEach(func(_, v []byte) error {
			if len(v) == 8 {
				n += binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return int(n), err
}

// Expire removes packets received before now − Retention from every
// mailbox, and returns how many it removed.
func (s *Store) Expire(now time.Time) (int, error) {
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(mailboxesBucket).ForEachBucket(func(name []byte) error {
			var id ID
			copy(id[:], name)
			cutoff := now.Add(-s.retention(tx, id)).UnixNano()
			c := tx.Bucket(mailboxesBucket).Bucket(name).Cursor()
			// Sequence order is arrival order, so the old packets come
			// first.
			n := uint64(0)
			for k, v := c.First(); k != nil; k, v = c.First() {
				if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) >= cutoff {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			removed += int(n)
			return setCount(tx, id, count(tx, id)-n)
		})
	})
	if err != nil {
		return removed, fmt.Errorf("mailbox: failed to expire packets: %w", err)
	}
	return removed, nil
}

// retention is how long the mailbox's packets are kept: the store's
// retention, or less if the owner asked for less.
func (s *Store) retention(tx *bolt.Tx, id ID) time.Duration {
	if v := tx.Bucket(retentionBucket).Get(id[:]); len(v) == 8 {
		if own := time.Duration(binary.BigEndian.Uint64(v)); own > 0 && own < s.opts.Retention {
			return own
		}
	}
	return s.opts.Retention
}

// SetRetention records how long the mailbox's owner wants its unfetched
// packets kept (for disappearing messages); 0 returns to the store's
// retention, which is also the most a mailbox gets.
func (s *Store) SetRetention(id ID, d time.Duration) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(retentionBucket)
		if d <= 0 {
			return b.Delete(id[:])
		}
		return b.Put(id[:], seqKey(uint64(d)))
	})
	if err != nil {
		return fmt.Errorf("mailbox: failed to set a retention: %w", err)
	}
	return nil
}

// A record is one stored packet: its key the sequence number (uint64, big
// endian, so that keys sort in arrival order), its value the arrival time
// (Unix nanoseconds, uint64 big endian) and the packet.
func encodeRecord(received time.Time, packet []byte) []byte {
	value := make([]byte, 8+len(packet))
	binary.BigEndian.PutUint64(value, uint64(received.UnixNano()))
	copy(value[8:], packet)
	return value
}

// decodeRecord reads a record, copying the packet out of bbolt's memory.
func decodeRecord(key, value []byte) (Message, error) {
	if len(key) != 8 || len(value) < 8 {
		return Message{}, fmt.Errorf("corrupt record: key of %d bytes, value of %d (want 8 and at least 8)", len(key), len(value))
	}
	return Message{
		Seq:      binary.BigEndian.Uint64(key),
		Received: time.Unix(0, int64(binary.BigEndian.Uint64(value))),
		Packet:   append([]byte(nil), value[8:]...),
	}, nil
}

func count(tx *bolt.Tx, id ID) uint64 {
	v := tx.Bucket(countsBucket).Get(id[:])
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func setCount(tx *bolt.Tx, id ID, n uint64) error {
	return tx.Bucket(countsBucket).Put(id[:], seqKey(n))
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
