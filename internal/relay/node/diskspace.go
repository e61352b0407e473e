package node

import (
	"errors"
	"log/slog"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// storageWrite is a kind of write to the data directory.
type storageWrite uint8

const (
	writeMailboxes storageWrite = 1 << iota // a batch of deliveries into the mailboxes
	writeReplayLog                          // the replay log's sync
)

func (w storageWrite) String() string {
	switch w {
	case writeMailboxes:
		return "storing packets in the mailboxes"
	case writeReplayLog:
		return "syncing the replay log (not acknowledging)"
	}
	return "writing to the data directory"
}

// diskSpace says when the data directory's file system is full and when
// it has space again, once each, in words and in the disk_full gauge. It
// keeps which kinds of write failed for want of space: space has returned
// only when each of them has worked again, since a small write (a few
// replay tags into the log's last page) can fit where a batch of packets
// does not. It belongs to the committer goroutine, the only writer.
type diskSpace struct {
	failed  storageWrite // the kinds of write that last failed for want of space
	gauge   prometheus.Gauge
	log     *slog.Logger
	dataDir string
}

// writeFailed reports a failed write and returns the drop reason of its
// packets. An error other than a full disk is logged each time.
func (d *diskSpace) writeFailed(w storageWrite, err error) string {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		d.log.Error(w.String()+" failed", "err", err)
		return dropInternal
	}
	if d.failed == 0 {
		d.gauge.Set(1)
		d.log.Error("the disk is full: "+w.String()+" failed; until space is freed in the data directory, packets that need it are refused (their senders retransmit them)",
			"data_dir", d.dataDir, "err", err)
	}
	d.failed |= w
	return dropDiskFull
}

// writeWorked notes a write that succeeded.
func (d *diskSpace) writeWorked(w storageWrite) {
	if d.failed&w == 0 {
		return
	}
	d.failed &^= w
	if d.failed == 0 {
		d.gauge.Set(0)
		d.log.Info("there is space on the disk again: packets are stored", "data_dir", d.dataDir)
	}
}
