package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// loopFileSystem makes an ext4 file system in a file of its own, mounts it
// and returns the image's path and the mount point. It skips the test,
// saying why, where that cannot be done (not root, no mkfs.ext4, no loop
// devices).
func loopFileSystem(t *testing.T) (image, mount string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount a file system of the test's own")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to make a file system of the test's own: %v", tool, err)
		}
	}
	dir := t.TempDir()
	image, mount = filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Truncate(image, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	os.Mkdir(mount, 0o700)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", image).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4 failed: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", image, mount).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount (no loop devices here?): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mount).Run() })
	return image, mount
}

// TestWipeLeavesNothingOnDisk: alice's state lives on a file system of the
// test's own; she exchanges messages with bob, then wipes with her daemon
// running. Afterwards the raw bytes of the file system hold neither the
// vault header (the wrapped key everything is sealed under) nor any message
// text. Before the wipe the same scan finds the header, which shows that it
// looks in the right place; the texts are never there in the clear.
func TestWipeLeavesNothingOnDisk(t *testing.T) {
	image, mount := loopFileSystem(t)
	nw := startNetworkWith(t, 1, nil, map[string][]string{"testnet": clientParameters})
	alice := nw.newClientIn(t, "alice", "provider-a", filepath.Join(mount, "alice"))
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	var texts []string
	for i := range 5 {
		texts = append(texts, fmt.Sprintf("SECRET-OUT-%d-the-terms-of-the-ceasefire", i), fmt.Sprintf("SECRET-IN-%d-we-accept-the-terms", i))
		alice.cli("send", "bob", texts[len(texts)-2])
		bob.cli("send", "alice", texts[len(texts)-1])
	}
	alice.cli("status", "--wait")
	bob.cli("status", "--wait")
	alice.cli("inbox", "--wait", "5")

	header, err := os.ReadFile(filepath.Join(alice.dir, "vault.header"))
	if err != nil {
		t.Fatal(err)
	}
	wrapped := header[len(header)-72:] // the wrapped state key
	raw := func() []byte {
		exec.Command("sync").Run()
		b, err := os.ReadFile(image)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := raw()
	if !bytes.Contains(before, wrapped) {
		t.Fatal("the scan does not find the vault header before the wipe: it proves nothing")
	}
	for _, text := range texts {
		if bytes.Contains(before, []byte(text)) {
			t.Fatalf("%q is on the disk in the clear", text)
		}
	}

	out := alice.cli("wipe", "--yes")
	if !strings.Contains(out, "wiped") {
		t.Fatalf("wipe: %s", out)
	}
	alice.cmd.Wait()
	alice.cmd = nil
	if out, err := exec.Command("umount", mount).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	after := raw()
	if bytes.Contains(after, wrapped) {
		t.Fatal("the wrapped key is still on the disk after the wipe")
	}
	for _, text := range texts {
		if bytes.Contains(after, []byte(text)) {
			t.Fatalf("%q is on the disk after the wipe", text)
		}
	}
	if _, err := alice.try("contact", "list"); err == nil {
		t.Fatal("alice's daemon still answers after the wipe")
	}
}
