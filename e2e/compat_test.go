package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// previousRelease builds the commit testdata/previous-release names, from
// this repository's history, and returns the binary. It skips when the
// checkout has no history to build from (a shallow clone), saying so.
func previousRelease(t *testing.T) (bin, commit string) {
	t.Helper()
	bin, commit, missing := findPreviousRelease(t)
	if missing != "" {
		t.Skip(missing)
	}
	return bin, commit
}

// findPreviousRelease is previousRelease, saying why instead of skipping
// when the checkout has no history to build from.
func findPreviousRelease(t *testing.T) (bin, commit, missing string) {
	t.Helper()
	f, err := os.Open("../testdata/previous-release")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			commit = line
		}
	}
	if len(commit) != 40 {
		t.Fatalf("testdata/previous-release names no commit (%q)", commit)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "", commit, "no git to build the previous release with"
	}
	if err := exec.Command("git", "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		shallow, _ := exec.Command("git", "rev-parse", "--is-shallow-repository").Output()
		if strings.TrimSpace(string(shallow)) == "true" {
			return "", commit, fmt.Sprintf("this is a shallow clone without the previous release's commit %s", commit)
		}
		t.Fatalf("the previous release's commit %s is not in this repository's history: %v", commit, err)
	}
	src := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", commit)
	archive.Dir = ".." // the whole tree, not this directory's
	untar := exec.Command("tar", "-x", "-C", src)
	var archiveErr, untarErr bytes.Buffer
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	untar.Stdin, _ = archive.StdoutPipe()
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", commit, err, untarErr.String())
	}
	bin = filepath.Join(t.TempDir(), "backchannel-"+commit[:7])
	build := exec.Command("go", "build", "-tags", "faults", "-o", bin, "./cmd/backchannel")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the previous release %s: %v\n%s", commit, err, out)
	}
	return bin, commit, ""
}

// exchange sends n messages each way between a and b and checks that each
// arrived exactly once (with those of earlier rounds still there).
func exchange(t *testing.T, round string, n int, a, b *clientProc) {
	t.Helper()
	for i := range n {
		a.cli("send", b.name, fmt.Sprintf("%s: %s to %s #%d", round, a.name, b.name, i))
		b.cli("send", a.name, fmt.Sprintf("%s: %s to %s #%d", round, b.name, a.name, i))
	}
	for _, c := range []*clientProc{a, b} {
		if out, err := c.try("status", "--wait", "--timeout", "3m"); err != nil {
			t.Fatalf("%s: %s: status --wait: %v\n%s\n%s's status:\n%s\n%s's status:\n%s\n%s's contacts:\n%s\n%s's contacts:\n%s", round, c.name, err, out,
				a.name, a.cli("status"), b.name, b.cli("status"), a.name, a.cli("contact", "list"), b.name, b.cli("contact", "list"))
		}
	}
	for _, pair := range [][2]*clientProc{{a, b}, {b, a}} {
		texts := pair[1].inboxTexts(t.TempDir())
		for i := range n {
			if want := fmt.Sprintf("%s: %s to %s #%d", round, pair[0].name, pair[1].name, i); texts[want] != 1 {
				t.Fatalf("%s's inbox has %q %d times, want once: %v", pair[1].name, want, texts[want], texts)
			}
		}
	}
}

// allowClassicalLinks sets a node's classical_links_until_epoch, as its
// operator does while a network moves to post-quantum links.
func allowClassicalLinks(t *testing.T, nw *network, name string, until uint64) {
	t.Helper()
	path := filepath.Join(nw.dir, name, "node.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), "[node]\n", fmt.Sprintf("[node]\nclassical_links_until_epoch = %d\n", until), 1)
	if edited == string(b) {
		t.Fatalf("%s has no [node] table", path)
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPreviousRelease: the previous release (testdata/previous-release,
// built from git history) writes the network (keys, configs, document) and
// runs half its nodes and alice's client; this version runs the others and
// bob's. Messages cross both ways through nodes of both versions. Then
// every process stops and this version takes over everything the previous
// one wrote — node state (replay filters, mailboxes, keys), the document,
// alice's encrypted client state — and the two talk on, alice's earlier
// messages still in her inbox.
func TestPreviousRelease(t *testing.T) {
	old, commit := previousRelease(t)
	t.Logf("previous release: %s", commit)
	bins := map[string]string{"provider-a": old, "mix-1-a": old, "mix-3-a": old}
	nw := generateNetwork(t, old, 1, map[string][]string{"testnet": clientParameters})
	nw.bins = bins
	t.Cleanup(nw.stopAll)
	for _, n := range nw.doc.Nodes {
		if _, isOld := bins[n.Name]; !isOld {
			// The operators of the upgraded nodes take classical links,
			// which the previous release speaks, until an epoch to come
			// (docs/operating.md).
			allowClassicalLinks(t, nw, n.Name, nw.doc.Epoch+1000)
		}
		nw.start(n.Name)
	}

	alice := nw.signUpWith(t, old, "alice", "provider-a", filepath.Join(nw.dir, "clients", "alice"))
	alice.start()
	t.Cleanup(alice.stop)
	bob := nw.newClient(t, "bob", "provider-b")
	// The previous release reads cards of version 1 only: bob gives his
	// in that format, and alice's software writes to him classically.
	befriend(alice, bob, "--classical")
	exchange(t, "mixed versions", 5, alice, bob)

	// This version takes over.
	alice.stop()
	for name := range bins {
		nw.kill(name, syscall.SIGTERM)
	}
	nw.bins = nil
	for name := range bins {
		nw.start(name)
	}
	alice.bin = binPath
	alice.start()
	// The previous release's state (one passphrase) opens as an identity
	// of one officer holding every role.
	if officers := alice.cli("officer", "list"); !strings.Contains(officers, "first officer") ||
		!strings.Contains(officers, "reader, drafter, releaser, administrator") || strings.Count(officers, "\n") != 1 {
		t.Fatalf("after the upgrade, alice's officers are:\n%s", officers)
	}
	exchange(t, "after the upgrade", 5, alice, bob)
	texts := alice.inboxTexts(t.TempDir())
	for i := range 5 {
		if want := fmt.Sprintf("mixed versions: bob to alice #%d", i); texts[want] != 1 {
			t.Fatalf("after the upgrade, alice's inbox has %q %d times, want once: %v", want, texts[want], texts)
		}
	}
	// Their session, set up with the previous release, is set up again
	// with envelope keys on both sides; each learns that the other holds
	// them from its next keyed payload (the word on what it reads is one).
	// The clients announce no such event: their contact lists are read
	// until it shows, for at most 30 seconds.
	for _, c := range []*clientProc{alice, bob} {
		deadline := time.Now().Add(30 * time.Second)
		for contacts := c.cli("contact", "list"); !strings.Contains(contacts, "envelopes: post-quantum"); contacts = c.cli("contact", "list") {
			if time.Now().After(deadline) {
				t.Fatalf("after the upgrade, %s's envelopes are not post-quantum:\n%s", c.name, contacts)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The move is done: provider-a, upgraded without
	// classical_links_until_epoch, takes post-quantum links only. A user
	// still on the previous release cannot connect; the provider refuses
	// the link, counts it and says why.
	mark := nw.outputs["provider-a"].mark()
	carol := nw.signUpWith(t, old, "carol", "provider-a", filepath.Join(nw.dir, "clients", "carol"))
	carol.start()
	t.Cleanup(carol.stop)
	if err := nw.outputs["provider-a"].waitFor(mark, 30*time.Second, "refused a link that offers no post-quantum key exchange"); err != nil {
		t.Fatal(err)
	}
	if got := nw.counter("backchannel_link_errors_total", "classical_refused", "provider-a"); got < 1 {
		t.Fatalf("provider-a counted %v refused classical links", got)
	}
}
