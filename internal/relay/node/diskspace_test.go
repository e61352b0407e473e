package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDiskSpaceSaidOnce: a full disk is said once, in words and by the
// gauge, and space is said to have returned once a write works and the
// file system has minFreeSpace free — not at the first write that works,
// which the mailboxes' database can do in pages of its own on a full file
// system (the e2e disk-full test saw the gauge drop 16 ms after it rose).
func TestDiskSpaceSaidOnce(t *testing.T) {
	var logs bytes.Buffer
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "disk_full"})
	var free uint64
	var statErr error
	d := diskSpace{
		gauge:   gauge,
		log:     slog.New(slog.NewTextHandler(&logs, nil)),
		dataDir: "/data",
		free:    func(string) (uint64, error) { return free, statErr },
	}
	full := fmt.Errorf("write mailboxes.db: %w", syscall.ENOSPC)
	said := func(what string) int { return strings.Count(logs.String(), what) }
	check := func(step string, wantGauge float64, wantFull, wantAgain int) {
		t.Helper()
		var m dto.Metric
		if err := gauge.Write(&m); err != nil {
			t.Fatal(err)
		}
		if g := m.GetGauge().GetValue(); g != wantGauge {
			t.Errorf("%s: the gauge is %v, want %v", step, g, wantGauge)
		}
		if n := said("the disk is full"); n != wantFull {
			t.Errorf("%s: said the disk is full %d times, want %d", step, n, wantFull)
		}
		if n := said("there is space on the disk again"); n != wantAgain {
			t.Errorf("%s: said space returned %d times, want %d", step, n, wantAgain)
		}
	}

	d.writeWorked()
	check("before anything failed", 0, 0, 0)
	if reason := d.writeFailed(writeMailboxes, full); reason != dropDiskFull {
		t.Errorf("a full disk's drop reason is %q", reason)
	}
	check("the mailboxes' write failed", 1, 1, 0)
	d.writeFailed(writeReplayLog, full)
	check("the replay log's sync failed too", 1, 1, 0)
	free = 4096
	d.writeWorked()
	check("a write worked, with 4 KiB free", 1, 1, 0)
	free, statErr = 1<<30, errors.New("statfs: input/output error")
	d.writeWorked()
	check("a write worked, statfs failed", 1, 1, 0)
	statErr = nil
	free = minFreeSpace
	d.writeWorked()
	check("a write worked, with enough free", 0, 1, 1)
	d.writeWorked()
	check("another write worked", 0, 1, 1)
	free = 0
	d.writeFailed(writeReplayLog, full)
	check("full again", 1, 2, 1)

	if reason := d.writeFailed(writeMailboxes, errors.New("input/output error")); reason != dropInternal {
		t.Errorf("another error's drop reason is %q", reason)
	}
	check("another error", 1, 2, 1)
	if !strings.Contains(logs.String(), "storing packets in the mailboxes failed") {
		t.Errorf("another error is not logged:\n%s", logs.String())
	}
}

// TestFreeSpace: statfs of a real directory gives a plausible figure, and
// of a missing one an error naming it.
func TestFreeSpace(t *testing.T) {
	if free, err := freeSpace(t.TempDir()); err != nil || free == 0 {
		t.Errorf("freeSpace(a temporary directory) = %d, %v", free, err)
	}
	if _, err := freeSpace("/no/such/directory"); err == nil || !strings.Contains(err.Error(), "/no/such/directory") {
		t.Errorf("freeSpace of a missing directory: %v", err)
	}
}
