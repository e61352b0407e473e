package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mountSmallDisk mounts a tmpfs of size at dir, with what dir held copied
// in, and unmounts it (keeping nothing) when the test ends. It skips
// without root or mount.
func mountSmallDisk(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a small file system of the test's own needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount command")
	}
	saved := dir + ".before"
	if err := os.Rename(dir, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	entries, err := os.ReadDir(saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(saved, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fill writes a file at path until the file system has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	// What the chunks left: byte by byte.
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	f.Sync()
}

// TestProviderDiskFull: bob's provider keeps its data on a small file
// system, which the test fills. Alice sends bob messages meanwhile: the
// provider refuses them (it drops what it cannot store, and stops
// acknowledging packets while its replay log cannot be written), says
// once in words that the disk is full, and its backchannel_disk_full gauge
// is 1; nothing else breaks. When space returns it says so, alice's
// retransmissions land, and every message arrives exactly once. Then the
// provider is killed and restarted on what the full disk left: its
// mailboxes and replay log open and serve.
func TestProviderDiskFull(t *testing.T) {
	nw := startNetworkWith(t, 1, nil, map[string][]string{"testnet": clientParameters})
	nw.kill("provider-b", syscall.SIGTERM)
	data := filepath.Join(nw.dir, "provider-b", "data")
	mountSmallDisk(t, data, "4m")
	nw.start("provider-b")

	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	exchange(t, "before", 2, alice, bob)

	out := nw.outputs["provider-b"]
	mark := out.mark()
	filler := filepath.Join(data, "filler")
	fill(t, filler)
	for i := range 5 {
		alice.cli("send", "bob", fmt.Sprintf("while full #%d", i))
	}
	if err := out.waitFor(mark, time.Minute, "the disk is full", "until space is freed"); err != nil {
		t.Fatalf("provider-b did not say its disk is full: %v", err)
	}
	if full := nw.counter("backchannel_disk_full", "", "provider-b"); full != 1 {
		t.Fatalf("backchannel_disk_full is %v while the disk is full", full)
	}

	mark = out.mark()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := out.waitFor(mark, time.Minute, "there is space on the disk again"); err != nil {
		t.Fatalf("provider-b did not say space returned: %v", err)
	}
	alice.cli("status", "--wait")
	texts := bob.inboxTexts(t.TempDir())
	for i := range 5 {
		if want := fmt.Sprintf("while full #%d", i); texts[want] != 1 {
			t.Fatalf("bob's inbox has %q %d times, want once: %v", want, texts[want], texts)
		}
	}
	if texts["before: alice to bob #0"] != 1 {
		t.Fatalf("bob's inbox lost what came before the disk filled: %v", texts)
	}
	if full := nw.counter("backchannel_disk_full", "", "provider-b"); full != 0 {
		t.Fatalf("backchannel_disk_full is %v after space returned", full)
	}

	// Killed and restarted on what the full disk left, it serves.
	nw.kill("provider-b", syscall.SIGKILL)
	nw.start("provider-b")
	exchange(t, "after", 2, alice, bob)
}
