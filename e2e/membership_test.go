package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/tools/readiness"
)

// TestAddAndRemoveNode follows docs/operating.md sections 10 and 11 with
// processes: a new mix made with `node keys` and started before any
// authority admits it is refused by the authority and waits; once its key
// is on the admission list (the authority restarted) it joins the network
// at a following epoch and serves; taken off the list again, it is left out
// of a later document and says so.
func TestAddAndRemoveNode(t *testing.T) {
	const epoch = 8 * time.Second
	nodes := 2 + 3
	addrs := freeAddresses(t, 2*nodes+2)
	dir := t.TempDir()
	run(t, "testnet", "-dir", dir, "-mixes", "1", "-layers", "3", "-providers", "2",
		"-addresses", strings.Join(addrs[:nodes], ","), "-metrics-addresses", strings.Join(addrs[nodes:2*nodes], ","),
		"-mean-delay", "1ms", "-authorities", "1", "-authority-addresses", addrs[2*nodes], "-epoch", epoch.String(), "-clock-skew", "1s")
	authorities := startAuthorities(t, dir, 1, addrs[2*nodes:2*nodes+1])
	nw := loadNetwork(t, dir, addrs[nodes:2*nodes], nil)
	t.Cleanup(nw.stopAll)
	for _, n := range nw.doc.Nodes {
		nw.start(n.Name)
	}

	// Section 10, step 1: the new node's keys.
	newDir := filepath.Join(dir, "mix-new")
	out := run(t, "node", "keys", "--dir", newDir)
	m := regexp.MustCompile(`identity key \(for the authorities' admission lists\): ([0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("node keys printed no identity key:\n%s", out)
	}
	identity := m[1]
	// Step 3 (before step 2, to see the refusal): its config, from
	// another mix's with its own name and address.
	cfg, err := config.Load(filepath.Join(dir, "mix-2-a", "node.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.Name, cfg.Node.Address, cfg.Node.Metrics = "mix-new", addrs[2*nodes+1], ""
	if err := config.Write(filepath.Join(newDir, "node.toml"), "mix-new, from mix-2-a's", cfg); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(newDir, "node.log")
	newOut, err := newOutput(log)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	node := dieWithTests(exec.Command(binPath, "node", "run", "--config", filepath.Join(newDir, "node.toml")))
	node.Env = append(os.Environ(), ready.Env())
	node.Stdout, node.Stderr = newOut, newOut
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		node.Process.Signal(syscall.SIGTERM)
		node.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("--- mix-new log:\n%s", b)
		}
	})
	if err := newOut.waitFor(0, epoch, "joining the network through the authorities"); err != nil {
		t.Fatal(err)
	}
	if err := newOut.waitFor(0, epoch, "did not take the descriptor", "not on the admission list"); err != nil {
		t.Fatal(err)
	}

	// Step 2: the operator admits it and restarts the authority, early in
	// an epoch so that the node's descriptors reach it before the freeze.
	authorityPath := filepath.Join(dir, "authority-1", "authority.toml")
	admit := func(add bool) {
		editAuthorityConfig(t, authorityPath, func(c *config.Authority) {
			if add {
				c.Authority.Admitted = append(c.Authority.Admitted, identity)
			} else {
				c.Authority.Admitted = slices.DeleteFunc(c.Authority.Admitted, func(k string) bool { return k == identity })
			}
		})
		mark := nw.outputs["provider-a"].mark()
		if err := nw.outputs["provider-a"].waitFor(mark, 2*epoch, "new epoch"); err != nil {
			t.Fatal(err)
		}
		authorities.restart(0)
	}
	admit(true)
	if err := ready.Wait(3 * epoch); err != nil {
		t.Fatalf("the admitted node did not join: %v", err)
	}
	t.Log("mix-new joined the network")

	// Section 11: taken off the list, it is left out of a later document.
	admit(false)
	if err := newOut.waitFor(0, 3*epoch, "cannot move to the new epoch", "not in the document"); err != nil {
		t.Fatalf("the removed node did not say it was left out: %v", err)
	}
	t.Log("mix-new was left out after its removal")
}
