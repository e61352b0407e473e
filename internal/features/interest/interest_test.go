package interest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/features/smp"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

var (
	start    = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	deadline = start.Add(time.Hour)
	ctx      = smp.Context([]byte("session"), []byte("alice"), []byte("bob"), []byte("check 1"), "open to talks?")
)

// wire passes a message through its encoding, as the session would.
func wire(t *testing.T, m *Message) *Message {
	t.Helper()
	if m == nil {
		t.Fatal("no message to send")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// play runs a whole check and returns both results.
func play(t *testing.T, asker, asked Answer, tamper func(*Message)) (*Check, *Check) {
	t.Helper()
	a, ask, err := Ask(testrand.New(1), [IDSize]byte{1}, "open to talks?", deadline, asker, ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Received(wire(t, ask), ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Answer = asked
	if m, _ := b.Due(testrand.New(2), deadline.Add(-time.Second)); m != nil {
		t.Fatal("the asked side answered before the deadline")
	}
	m2, err := b.Due(testrand.New(2), deadline)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(m2)
	}
	m3, err := a.Receive(wire(t, m2))
	if err != nil {
		t.Fatal(err)
	}
	if a.Result != Pending {
		if m3.Type != TypeAbort {
			t.Fatal("a failed check sent no abort")
		}
		b.Receive(wire(t, m3))
		return a, b
	}
	m4, err := b.Receive(wire(t, m3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Receive(wire(t, m4)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestAllAnswers(t *testing.T) {
	for _, tc := range []struct {
		asker, asked Answer
		want         Result
	}{
		{Yes, Yes, Match}, {Yes, No, NoMatch}, {No, Yes, NoMatch}, {No, No, NoMatch}, {Yes, Undecided, NoMatch},
	} {
		a, b := play(t, tc.asker, tc.asked, nil)
		if a.Result != tc.want || b.Result != tc.want {
			t.Errorf("asker %v, asked %v: asker sees %v, asked sees %v, want %v", tc.asker, tc.asked, a.Result, b.Result, tc.want)
		}
		if a.Reason != "" || b.Reason != "" {
			t.Errorf("asker %v, asked %v: reasons %q %q", tc.asker, tc.asked, a.Reason, b.Reason)
		}
	}
}

// A tampered protocol message (a proof that does not verify) aborts the
// check at both sides as "no match", even when both said yes.
func TestTamperedMessageAborts(t *testing.T) {
	a, b := play(t, Yes, Yes, func(m *Message) { m.SMP[len(m.SMP)-1] ^= 1 })
	if a.Result != NoMatch || b.Result != NoMatch || a.Reason == "" || b.Reason == "" {
		t.Fatalf("asker %v (%s), asked %v (%s)", a.Result, a.Reason, b.Result, b.Reason)
	}
	t.Logf("asker: %s; asked: %s", a.Reason, b.Reason)
}

func TestTimeoutAndOrder(t *testing.T) {
	a, ask, err := Ask(testrand.New(1), [IDSize]byte{2}, "q", deadline, Yes, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Receive(&Message{Type: TypeStep, CheckID: ask.CheckID, Step: 4, SMP: []byte{1}}); err == nil && a.Result == Pending {
		t.Fatal("message 4 before message 2 was taken")
	}
	a, _, _ = Ask(testrand.New(1), [IDSize]byte{3}, "q", deadline, Yes, ctx)
	a.Due(testrand.New(3), deadline.Add(Grace/2))
	if a.Result != Pending {
		t.Fatal("timed out within the grace period")
	}
	a.Due(testrand.New(3), deadline.Add(Grace+time.Second))
	if a.Result != NoMatch || a.Reason != "timed out" {
		t.Fatalf("after the grace period: %v %q", a.Result, a.Reason)
	}
	if _, _, err := Ask(testrand.New(1), [IDSize]byte{4}, "q", deadline, Undecided, ctx); err == nil {
		t.Fatal("an undecided asker")
	}
	if _, err := a.Receive(&Message{Type: TypeAbort, CheckID: [IDSize]byte{9}}); !errors.Is(err, ErrState) {
		t.Fatalf("a message for another check: %v", err)
	}
}

// The asked side's message looks the same whatever it answered: the same
// length, sent at the deadline.
func TestAnswersLookAlike(t *testing.T) {
	var sizes []int
	for _, answer := range []Answer{Yes, No, Undecided} {
		_, ask, _ := Ask(testrand.New(1), [IDSize]byte{5}, "q", deadline, Yes, ctx)
		b, _ := Received(ask, ctx)
		b.Answer = answer
		m, _ := b.Due(testrand.New(byte(answer)+10), deadline)
		raw, _ := m.MarshalBinary()
		sizes = append(sizes, len(raw))
	}
	if sizes[0] != sizes[1] || sizes[1] != sizes[2] {
		t.Fatalf("answers of sizes %v", sizes)
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := (&Message{Type: TypeStep, CheckID: [IDSize]byte{1}, Step: 2, SMP: []byte{1, 2}}).MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":    {},
		"version":  append([]byte{2}, good[1:]...),
		"type":     append([]byte{1, 9}, good[2:]...),
		"trailing": append(bytes.Clone(good), 0),
		"step":     append(append([]byte{1, 2}, make([]byte, IDSize)...), 5, 0, 0),
		"short":    good[:len(good)-1],
	} {
		if _, err := ParseMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, m := range []*Message{
		{Type: TypeAsk, CheckID: [IDSize]byte{1}, Question: "open to talks?", Deadline: deadline, SMP: []byte{1, 1, 2}},
		{Type: TypeStep, CheckID: [IDSize]byte{1}, Step: 3, SMP: []byte{1, 3}},
		{Type: TypeAbort, CheckID: [IDSize]byte{1}},
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a parsed message does not encode back: %v", err)
		}
	})
}
