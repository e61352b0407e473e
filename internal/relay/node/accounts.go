package node

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// Accounts is a provider's account table: which client link keys may connect
// and which mailbox each one owns. It lives in a text file, one account a
// line ("<link key hex> <mailbox id hex>", # for comments), that the operator
// fills with `backchannel provider add-user`; the provider rereads it when the
// file changes, so accounts can be added while it runs. There is no open
// sign-up.
type Accounts struct {
	path string

	mu        sync.Mutex
	modTime   time.Time                         // guarded by mu
	size      int64                             // guarded by mu
	byKey     map[[wire.KeySize]byte]mailbox.ID // guarded by mu
	mailboxes map[mailbox.ID]bool               // guarded by mu
}

// LoadAccounts reads the account table at path (a missing file is an empty
// table).
func LoadAccounts(path string) (*Accounts, error) {
	a := &Accounts{path: path}
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Accounts) reload() error {
	info, err := os.Stat(a.path)
	if os.IsNotExist(err) {
		a.byKey, a.mailboxes = map[[wire.KeySize]byte]mailbox.ID{}, map[mailbox.ID]bool{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if info.ModTime().Equal(a.modTime) && info.Size() == a.size && a.byKey != nil {
		return nil
	}
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	defer f.Close()
	byKey := map[[wire.KeySize]byte]mailbox.ID{}
	mailboxes := map[mailbox.ID]bool{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, id, err := parseAccount(text)
		if err != nil {
			return fmt.Errorf("accounts: %s line %d: %v", a.path, line, err)
		}
		if _, dup := byKey[key]; dup {
			return fmt.Errorf("accounts: %s line %d: the link key appears twice", a.path, line)
		}
		if mailboxes[id] {
			return fmt.Errorf("accounts: %s line %d: the mailbox appears twice", a.path, line)
		}
		byKey[key] = id
		mailboxes[id] = true
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	a.byKey, a.mailboxes, a.modTime, a.size = byKey, mailboxes, info.ModTime(), info.Size()
	return nil
}

func parseAccount(line string) (key [wire.KeySize]byte, id mailbox.ID, err error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return key, id, fmt.Errorf("want \"<link key hex> <mailbox id hex>\"")
	}
	k, err1 := hex.DecodeString(fields[0])
	m, err2 := hex.DecodeString(fields[1])
	if err1 != nil || err2 != nil || len(k) != wire.KeySize || len(m) != mailbox.IDSize {
		return key, id, fmt.Errorf("want a %d-byte link key and a %d-byte mailbox id in hex", wire.KeySize, mailbox.IDSize)
	}
	copy(key[:], k)
	copy(id[:], m)
	return key, id, nil
}

// Lookup returns the mailbox of the client with link key key.
func (a *Accounts) Lookup(key [wire.KeySize]byte) (mailbox.ID, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reload(); err != nil {
		return mailbox.ID{}, false, err
	}
	id, ok := a.byKey[key]
	return id, ok, nil
}

// HasMailbox reports whether id is an account's mailbox.
func (a *Accounts) HasMailbox(id mailbox.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.mailboxes[id] {
		// The file may have grown since it was last read.
		if err := a.reload(); err != nil {
			return false
		}
	}
	return a.mailboxes[id]
}

// Account is one line of the account table.
type Account struct {
	LinkKey [wire.KeySize]byte
	Mailbox mailbox.ID
}

// AddAccount appends an account to the table at path, refusing a link key or
// mailbox that is already there.
func AddAccount(path string, key [wire.KeySize]byte, id mailbox.ID) error {
	return AddAccounts(path, []Account{{LinkKey: key, Mailbox: id}})
}

// AddAccounts appends accounts to the table at path with one write and one
// sync, refusing the lot if any link key or mailbox is already there (or
// twice among them).
func AddAccounts(path string, accounts []Account) error {
	a, err := LoadAccounts(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, acc := range accounts {
		if _, ok := a.byKey[acc.LinkKey]; ok {
			return fmt.Errorf("accounts: link key %x already has an account", acc.LinkKey)
		}
		if a.mailboxes[acc.Mailbox] {
			return fmt.Errorf("accounts: that mailbox already belongs to an account")
		}
		if acc.Mailbox == mailbox.ID(directory.DropRecipient) {
			return fmt.Errorf("accounts: the all-zero mailbox is reserved for drop cover packets")
		}
		a.byKey[acc.LinkKey], a.mailboxes[acc.Mailbox] = acc.Mailbox, true
		fmt.Fprintf(&b, "%x %x\n", acc.LinkKey, acc.Mailbox)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("accounts: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("accounts: %w", err)
	}
	return f.Close()
}
