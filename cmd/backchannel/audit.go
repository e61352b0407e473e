package main

import (
	"fmt"
	"io"
	"time"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// runAudit is `backchannel audit show|verify`.
func runAudit(args []string, stdout, stderr io.Writer) int {
	sub, fs, dir, ok := subcommand("audit", args, stderr)
	if !ok {
		return 2
	}
	before := ""
	if sub == "cut" {
		fs.StringVar(&before, "before", "", "remove the entries older than this day (2006-01-02, local time)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case sub == "show" && fs.NArg() == 0:
		resp, ok := call[control.AuditShowResponse](*dir, &control.AuditShowRequest{}, stderr)
		if !ok {
			return 1
		}
		for _, e := range resp.Entries {
			line := fmt.Sprintf("%6d  %s  %s  %s", e.Seq, e.Time.Local().Format(time.RFC3339), e.Officer, e.Action)
			if e.Object != "" {
				line += "  " + e.Object
			}
			fmt.Fprintln(stdout, line)
		}
		return 0
	case sub == "verify" && fs.NArg() == 0:
		resp, ok := call[control.AuditVerifyResponse](*dir, &control.AuditVerifyRequest{}, stderr)
		if !ok {
			return 1
		}
		fmt.Fprintf(stdout, "the audit trail holds: %d entries checked, none removed, altered, reordered or cut off\n", resp.Checked)
		return 0
	case sub == "cut" && fs.NArg() == 0 && before != "":
		day, err := time.ParseInLocation(time.DateOnly, before, time.Local)
		if err != nil {
			fmt.Fprintf(stderr, "backchannel: audit cut: --before %q: want a day such as 2026-01-31\n", before)
			return 2
		}
		resp, code, done := callAct[control.AuditCutResponse](*dir, &control.AuditCutRequest{Before: day}, stdout, stderr)
		if !done {
			return code
		}
		fmt.Fprintf(stdout, "removed %d entries from the trail's start; the cut is recorded in it\n", resp.Removed)
		return 0
	}
	return usageOf("audit "+sub, stderr)
}
