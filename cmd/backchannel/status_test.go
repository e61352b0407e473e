package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// TestStatusLines: every sent message's line says what it is (a text's
// first words, a file's name, what a feature's message is for), where it
// is, its attempts and when it goes again; the counters say what the acks
// were for. The About values are those the features write (their tests
// check that they do).
func TestStatusLines(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	msg := func(id, kind string, status client.Status, edit func(*client.MessageInfo)) client.MessageInfo {
		m := client.MessageInfo{ID: id, Contact: "a party in country X", Kind: kind, Status: status, Fragments: 1, Time: now}
		if edit != nil {
			edit(&m)
		}
		return m
	}
	resp := control.StatusResponse{Messages: []client.MessageInfo{
		msg("01", "text", client.Delivered, func(m *client.MessageInfo) { m.Text, m.Acked = "are you open to talks?", 1 }),
		msg("02", "text", client.Sent, func(m *client.MessageInfo) {
			m.Text, m.Attempts, m.NextAttempt = "a long message whose first words alone are shown in the list of sent messages", 3, now.Add(40*time.Second)
			m.Deadline = time.Date(2026, 12, 8, 12, 0, 0, 0, time.Local)
		}),
		msg("03", "file", client.Sent, func(m *client.MessageInfo) { m.Name, m.Size, m.Fragments, m.Acked = "terms.pdf", 9000, 5, 2 }),
		msg("04", "file", client.Queued, func(m *client.MessageInfo) { m.Name, m.Size = "map.png", 300 }),
		msg("05", "text", client.Failed, func(m *client.MessageInfo) {
			m.Text, m.Reason = "is anyone there?", "fragment 1 of 1 was not acknowledged after 10 attempts"
		}),
		msg("06", "introduction", client.Delivered, func(m *client.MessageInfo) { m.About = `introduction to "a party in country Y"` }),
		msg("07", "conveyance", client.Sent, func(m *client.MessageInfo) { m.About = `to convey to "the other side": "we accept"` }),
		msg("08", "interest check", client.Queued, func(m *client.MessageInfo) { m.About = `interest check asked: "Are you open to talks?"` }),
		msg("09", "disappearing-messages setting", client.Delivered, func(m *client.MessageInfo) { m.About = "disappearing messages: after 24h0m0s" }),
		msg("10", "interest check", client.Delivered, nil),                               // a record of the first releases
		msg("11", "text", client.Delivered, func(m *client.MessageInfo) { m.Size = 22 }), // its text disappeared
	}, Stats: &client.Stats{Connected: true, Epoch: 7, AcksSent: 2, AckPacketsSent: 4, AcksReceived: 3, AcksNotSent: 5}}
	var out bytes.Buffer
	if failed := writeStatus(&out, resp, now); failed != 1 {
		t.Errorf("%d failed, want 1", failed)
	}
	want := map[string]string{
		"01": `text "are you open to talks?"  delivered`,
		"02": `text "a long message whose first words alone…"  retrying: attempt 3; sent again within 40s if no acknowledgement comes; fails if not acknowledged by Tue 8 Dec 12:00`,
		"03": `file "terms.pdf", 8.8 KiB  sent, waiting for the recipient's acknowledgement; 2 of 5 fragments acknowledged`,
		"04": `file "map.png", 300 bytes  queued: it goes out in the coming send slots`,
		"05": `text "is anyone there?"  failed: fragment 1 of 1 was not acknowledged after 10 attempts`,
		"06": `introduction to "a party in country Y"  delivered`,
		"07": `to convey to "the other side": "we accept"  sent, waiting`,
		"08": `interest check asked: "Are you open to talks?"  queued`,
		"09": `disappearing messages: after 24h0m0s  delivered`,
		"10": `interest check message  delivered`,
		"11": `text of 22 bytes  delivered`,
	}
	lines := strings.Split(out.String(), "\n")
	for id, w := range want {
		found := false
		for _, line := range lines {
			if strings.HasPrefix(line, id+"  to a party in country X  ") {
				found = true
				if !strings.Contains(line, w) {
					t.Errorf("message %s:\n got %s\nwant …%s…", id, line, w)
				}
			}
		}
		if !found {
			t.Errorf("no line for message %s:\n%s", id, out.String())
		}
	}
	for _, w := range []string{"4 ack channel packets", "2 single acknowledgements", "3 acknowledgements of messages you sent", "acknowledgements not sent: 5"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("the counters do not say %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), `""`) {
		t.Errorf("an empty name in:\n%s", out.String())
	}
}
