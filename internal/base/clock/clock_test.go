package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	late := f.NewTimerAt(start.Add(2 * time.Second))
	early := f.NewTimerAt(start.Add(time.Second))
	stopped := f.NewTimerAt(start.Add(time.Second))
	past := f.NewTimerAt(start.Add(-time.Second))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	select {
	case <-past.C():
	default:
		t.Fatal("a timer for a past deadline did not fire at once")
	}
	f.Advance(time.Second)
	if got := <-early.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("early fired with %v", got)
	}
	select {
	case <-late.C():
		t.Fatal("late fired early")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	f.Advance(time.Second)
	<-late.C()
	if late.Stop() {
		t.Fatal("Stop of a fired timer reported true")
	}
	if !f.Now().Equal(start.Add(2 * time.Second)) {
		t.Fatalf("Now = %v", f.Now())
	}
}
