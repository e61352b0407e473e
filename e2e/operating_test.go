package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// guideBlock is a fenced block of docs/operating.md with attributes after
// its language: ```sh host=10.77.0.1 background="node running".
type guideBlock struct {
	lang  string
	attrs map[string]string
	body  string
}

var (
	fenceOpen = regexp.MustCompile("(?m)^```(\\w+) (.+)$")
	attribute = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)
)

// guideBlocks returns the attributed blocks of the operating guide, in
// order.
func guideBlocks(t *testing.T) []guideBlock {
	t.Helper()
	text, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []guideBlock
	s := string(text)
	for _, m := range fenceOpen.FindAllStringSubmatchIndex(s, -1) {
		b := guideBlock{lang: s[m[2]:m[3]], attrs: map[string]string{}}
		for _, a := range attribute.FindAllStringSubmatch(s[m[4]:m[5]], -1) {
			b.attrs[a[1]] = strings.Trim(a[2], `"`)
		}
		rest := s[m[1]+1:]
		end := strings.Index(rest, "```")
		if end < 0 {
			t.Fatalf("an unclosed block at %q", s[m[0]:m[1]])
		}
		b.body = rest[:end]
		out = append(out, b)
	}
	return out
}

// commandLines splits a shell block into its commands, joining lines
// continued with a backslash.
func commandLines(body string) []string {
	var out []string
	cur := ""
	for _, line := range strings.Split(body, "\n") {
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\")
			continue
		}
		cur += line
		if strings.TrimSpace(cur) != "" && !strings.HasPrefix(strings.TrimSpace(cur), "#") {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

// hosts are network namespaces joined by a bridge in a namespace of their
// own, so that nothing of the machine's network is touched.
type hosts struct {
	t      *testing.T
	prefix string
	byIP   map[string]string // address → namespace
}

func makeHosts(t *testing.T, ips []string) *hosts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2) to make network namespaces")
	}
	h := &hosts{t: t, prefix: fmt.Sprintf("bcop%d", os.Getpid()), byIP: map[string]string{}}
	sw := h.prefix + "-sw"
	if out, err := exec.Command("ip", "netns", "add", sw).CombinedOutput(); err != nil {
		t.Skipf("network namespaces cannot be made here: %v: %s", err, out)
	}
	t.Cleanup(h.remove)
	h.ip("-n", sw, "link", "add", "br0", "type", "bridge")
	h.ip("-n", sw, "link", "set", "br0", "up")
	for i, addr := range ips {
		ns := fmt.Sprintf("%s-%d", h.prefix, i+1)
		h.ip("netns", "add", ns)
		peer := fmt.Sprintf("b%d", i+1)
		h.ip("link", "add", "e0", "netns", ns, "type", "veth", "peer", peer, "netns", sw)
		h.ip("-n", sw, "link", "set", peer, "master", "br0", "up")
		h.ip("-n", ns, "addr", "add", addr+"/24", "dev", "e0")
		h.ip("-n", ns, "link", "set", "e0", "up")
		h.ip("-n", ns, "link", "set", "lo", "up")
		h.byIP[addr] = ns
	}
	return h
}

func (h *hosts) ip(args ...string) {
	h.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		h.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (h *hosts) remove() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if name := strings.Fields(line + " x")[0]; strings.HasPrefix(name, h.prefix+"-") {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// command runs script with bash on host, in dir.
func (h *hosts) command(ctx context.Context, host, dir, script string) *exec.Cmd {
	ns, ok := h.byIP[host]
	if !ok {
		h.t.Fatalf("the guide names host %s, which the test did not make", host)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
	return cmd
}

// TestOperatingGuide follows section 13 of docs/operating.md block by
// block on four network namespaces made here: it generates the network,
// starts three authorities and eight nodes on their hosts, signs up two
// users at different providers, and a message crosses from one to the
// other. Every command is the guide's own, run on the host the guide names.
func TestOperatingGuide(t *testing.T) {
	var walkthrough []guideBlock
	for _, b := range guideBlocks(t) {
		if b.lang == "sh" && b.attrs["host"] != "" {
			walkthrough = append(walkthrough, b)
		}
	}
	if len(walkthrough) < 10 {
		t.Fatalf("the guide's walkthrough has %d blocks", len(walkthrough))
	}
	h := makeHosts(t, []string{"10.77.0.1", "10.77.0.2", "10.77.0.3", "10.77.0.4"})
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	type daemon struct {
		cmd *exec.Cmd
		log string
	}
	var daemons []daemon
	t.Cleanup(func() {
		for _, d := range daemons {
			d.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, d := range daemons {
			d.cmd.Wait()
			if t.Failed() {
				log, _ := os.ReadFile(d.log)
				t.Logf("--- %s:\n%s", d.cmd.Args[len(d.cmd.Args)-1], log)
			}
		}
	})
	var last string
	for i, b := range walkthrough {
		host := b.attrs["host"]
		if wait := b.attrs["background"]; wait != "" {
			for _, line := range commandLines(b.body) {
				log := filepath.Join(t.TempDir(), "daemon.log")
				out, err := newOutput(log)
				if err != nil {
					t.Fatal(err)
				}
				// exec env: the daemon replaces the shell, so that it gets the
				// signals, whether the line sets variables first or not.
				cmd := h.command(context.Background(), host, work, "exec env "+line)
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				daemons = append(daemons, daemon{cmd, log})
				if err := out.waitFor(0, time.Minute, wait); err != nil {
					logText, _ := os.ReadFile(log)
					t.Fatalf("block %d on %s: %q did not say %q: %v\n%s", i+1, host, line, wait, err, logText)
				}
			}
			continue
		}
		out, err := h.command(ctx, host, work, b.body).CombinedOutput()
		if err != nil {
			t.Fatalf("block %d on %s failed: %v\n%s\n--- output:\n%s", i+1, host, err, b.body, out)
		}
		last = string(out)
	}
	if !strings.Contains(last, "hello across four hosts") {
		t.Fatalf("the last step did not show the message:\n%s", last)
	}
	t.Logf("alice's inbox on 10.77.0.3:\n%s", strings.TrimSpace(last))
}

// TestSystemdUnits checks the guide's example systemd units with
// systemd-analyze verify (with the ExecStart binary pointed at the test's
// build, which must exist for verify): no error and no warning.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here")
	}
	dir := t.TempDir()
	var units []string
	for _, b := range guideBlocks(t) {
		if b.lang != "ini" || b.attrs["file"] == "" {
			continue
		}
		path := filepath.Join(dir, b.attrs["file"])
		body := strings.ReplaceAll(b.body, "/usr/local/bin/backchannel", binPath)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	if len(units) != 2 {
		t.Fatalf("%d units in the guide, want 2 (node and authority)", len(units))
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdUnitsMayWrite checks the guide's units against what each
// service writes: a node writes its data, Sphinx keys and document in its
// directory; an authority writes its published documents in the
// "documents" directory its example config names. Each such path must be
// writable under the unit's sandbox (ProtectSystem=strict makes all else
// read-only; the most specific ReadWritePaths or ReadOnlyPaths entry
// decides). systemd-analyze verify does not check this: the authority's
// unit once made its documents read-only.
func TestSystemdUnitsMayWrite(t *testing.T) {
	text, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^documents = "([^"]+)"`).FindSubmatch(text)
	if m == nil {
		t.Fatal("the guide's authority config names no documents directory")
	}
	writes := map[string][]string{
		"backchannel-node@.service":      {"data", "sphinx-keys", "network.doc"},
		"backchannel-authority@.service": {string(m[1]) + "/epoch-1.doc"},
	}
	checked := 0
	for _, b := range guideBlocks(t) {
		paths, ok := writes[b.attrs["file"]]
		if b.lang != "ini" || !ok {
			continue
		}
		unit := map[string][]string{}
		for _, line := range strings.Split(b.body, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				unit[k] = append(unit[k], strings.Fields(v)...)
			}
		}
		if len(unit["WorkingDirectory"]) != 1 {
			t.Fatalf("%s: no WorkingDirectory", b.attrs["file"])
		}
		for _, p := range paths {
			full := filepath.Join(unit["WorkingDirectory"][0], p)
			writable, longest := false, -1
			for _, entry := range append(unit["ReadWritePaths"], unit["ReadOnlyPaths"]...) {
				if (full == entry || strings.HasPrefix(full, entry+"/")) && len(entry) > longest {
					longest, writable = len(entry), slices.Contains(unit["ReadWritePaths"], entry)
				}
			}
			if !writable {
				t.Errorf("%s: the service writes %s, which its sandbox keeps read-only", b.attrs["file"], full)
			}
			checked++
		}
	}
	if checked != 4 {
		t.Fatalf("checked %d paths, want 4: are both units in the guide?", checked)
	}
}
