package node

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// storageWrite is a kind of write to the data directory.
type storageWrite uint8

const (
	writeMailboxes storageWrite = iota // a batch of deliveries into the mailboxes
	writeReplayLog                     // the replay log's sync
)

func (w storageWrite) String() string {
	if w == writeMailboxes {
		return "storing packets in the mailboxes"
	}
	return "syncing the replay log (not acknowledging)"
}

// minFreeSpace is how much the data directory's file system must have
// free, after a write failed for want of space, for the disk to count as
// having space again.
const minFreeSpace = 1 << 20

// diskSpace says when the data directory's file system is full and when
// it has space again, once each, in words and in the disk_full gauge.
//
// A write that works does not show that space returned: the mailboxes'
// database reuses the pages of fetched packets, and the replay log's
// last page takes a few more tags, on a file system with nothing left. So
// once a write failed for want of space the disk stays full until a write
// works and the file system has minFreeSpace free.
//
// It belongs to the committer goroutine, the only writer.
type diskSpace struct {
	full    bool
	gauge   prometheus.Gauge
	log     *slog.Logger
	dataDir string
	// free returns the bytes free to this process on dir's file system.
	free func(dir string) (uint64, error)
}

// writeFailed reports a failed write and returns the drop reason of its
// packets. An error other than a full disk is logged each time.
func (d *diskSpace) writeFailed(w storageWrite, err error) string {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		d.log.Error(w.String()+" failed", "err", err)
		return dropInternal
	}
	if !d.full {
		d.full = true
		d.gauge.Set(1)
		d.log.Error("the disk is full: "+w.String()+" failed; until space is freed in the data directory, packets that need it are refused (their senders retransmit them)",
			"data_dir", d.dataDir, "err", err)
	}
	return dropDiskFull
}

// writeWorked notes a write that succeeded.
func (d *diskSpace) writeWorked() {
	if !d.full {
		return
	}
	free, err := d.free(d.dataDir)
	if err != nil || free < minFreeSpace {
		return
	}
	d.full = false
	d.gauge.Set(0)
	d.log.Info("there is space on the disk again: packets are stored", "data_dir", d.dataDir, "free_bytes", free)
}

// freeSpace returns the bytes free to an unprivileged process on dir's
// file system.
func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("node: statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
