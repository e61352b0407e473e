package readiness

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// TestReadyFromSdNotify checks that what go-systemd sends, as a server
// does, is what Wait receives, after other notifications; and that a
// silent process times out.
func TestReadyFromSdNotify(t *testing.T) {
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Setenv("NOTIFY_SOCKET", strings.TrimPrefix(s.Env(), "NOTIFY_SOCKET="))
	if ok, err := daemon.SdNotify(false, "STATUS=starting"); !ok || err != nil {
		t.Fatalf("status not sent: %v %v", ok, err)
	}
	if err := s.Wait(50 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a status alone: %v, want ErrTimeout", err)
	}
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok || err != nil {
		t.Fatalf("ready not sent: %v %v", ok, err)
	}
	if err := s.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NOTIFY_SOCKET") == "" {
		t.Fatal("SdNotify(false, …) must leave the environment alone")
	}
}
