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

// TestDiskSpaceSaidOnce: a full disk is said once, and space is said to
// have returned only when every kind of write that failed for want of it
// has worked again — a replay log sync that fits in the log's last page
// says nothing of a batch of packets for the mailboxes (the e2e disk-full
// test saw the gauge drop 16 ms after it rose that way).
func TestDiskSpaceSaidOnce(t *testing.T) {
	var logs bytes.Buffer
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "disk_full"})
	d := diskSpace{gauge: gauge, log: slog.New(slog.NewTextHandler(&logs, nil)), dataDir: "/data"}
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

	d.writeWorked(writeReplayLog)
	check("before anything failed", 0, 0, 0)
	if reason := d.writeFailed(writeMailboxes, full); reason != dropDiskFull {
		t.Errorf("a full disk's drop reason is %q", reason)
	}
	check("the mailboxes' write failed", 1, 1, 0)
	d.writeWorked(writeReplayLog)
	check("a replay log sync worked", 1, 1, 0)
	d.writeFailed(writeReplayLog, full)
	d.writeFailed(writeMailboxes, full)
	check("both failed, again", 1, 1, 0)
	d.writeWorked(writeMailboxes)
	check("the mailboxes took a batch, the log not yet", 1, 1, 0)
	d.writeWorked(writeReplayLog)
	check("both worked", 0, 1, 1)
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
