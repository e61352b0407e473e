package main

// The commands on the client's state as a whole: backup, restore and wipe.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/vault"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// runBackup is `backchannel backup FILE`.
func runBackup(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("backup", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("backup", stderr)
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err == nil {
		var pass []byte
		if pass, err = passphrase("BACKCHANNEL_BACKUP_PASSPHRASE", "a passphrase for the backup", true, stderr); err == nil {
			err = control.Call(socketPath(*dir), &control.BackupRequest{Path: path, Passphrase: string(pass)}, nil)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup written to %s (identity, contacts, settings; keep it and its passphrase apart)\n", path)
	return 0
}

// runRestore is `backchannel restore FILE`: a new state directory from a
// backup.
func runRestore(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("restore", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		return usageOf("restore", stderr)
	}
	err := func() error {
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		backupPass, err := passphrase("BACKCHANNEL_BACKUP_PASSPHRASE", "the backup's passphrase", false, stderr)
		if err != nil {
			return err
		}
		pass, err := passphrase("BACKCHANNEL_PASSPHRASE", "a passphrase for the restored state", true, stderr)
		if err != nil {
			return err
		}
		c, err := client.Restore(client.Config{Dir: *dir, Passphrase: pass, Rand: rand.Reader}, data, backupPass)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	}()
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored into %s; your sessions will be set up again when you next write, and your contacts told\n", *dir)
	return 0
}

// runWipe is `backchannel wipe --yes`: the local state made unreadable at
// once, even to someone who knows the passphrase. A running daemon wipes
// and stops; without one, the files are wiped directly.
func runWipe(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("wipe", stderr)
	yes := fs.Bool("yes", false, "really wipe: there is no undo")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*yes {
		fmt.Fprintf(stderr, "backchannel: wipe destroys %s for good (identity, contacts, messages); say --yes\n", *dir)
		return 2
	}
	err := control.CallAs(socketPath(*dir), os.Getenv(tokenEnv), &control.WipeRequest{}, nil)
	var drafted *control.Drafted
	if errors.As(err, &drafted) {
		fmt.Fprintf(stdout, "wipe: %v\n", drafted)
		return 0
	}
	if err != nil && strings.Contains(err.Error(), "no client daemon answers") {
		err = vault.WipeFiles(*dir)
	}
	if err == nil {
		os.Remove(socketPath(*dir))
		os.Remove(*dir) // only if empty
	}
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: wipe: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wiped %s: the key the state was sealed under is overwritten, and every file with it\n", *dir)
	return 0
}
