package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/pki/directory"
	"github.com/backchannel/backchannel/internal/relay/keyfile"
	"github.com/backchannel/backchannel/internal/relay/node"
	"github.com/backchannel/backchannel/internal/tools/readiness"
)

// authorityProcs are directory authorities running as processes.
type authorityProcs struct {
	t       *testing.T
	dir     string
	urls    []string
	procs   []*exec.Cmd
	logs    []string
	outputs []*output
	ready   []*readiness.Socket // each process's readiness, per launch
	epoch   time.Duration
	cfg     *config.Authority
}

func startAuthorities(t *testing.T, dir string, n int, addrs []string) *authorityProcs {
	t.Helper()
	a := &authorityProcs{t: t, dir: dir}
	for i := range n {
		if i == 0 {
			var err error
			if a.cfg, err = config.LoadAuthority(a.configPath(0)); err != nil {
				t.Fatal(err)
			}
			a.epoch = a.cfg.Authority.Epoch.Duration
		}
		a.procs, a.logs, a.urls, a.outputs = append(a.procs, nil), append(a.logs, ""), append(a.urls, "http://"+addrs[i]), append(a.outputs, nil)
		a.ready = append(a.ready, nil)
		a.launch(i)
	}
	t.Cleanup(func() {
		for i, p := range a.procs {
			if p.ProcessState == nil {
				p.Process.Signal(syscall.SIGTERM)
				p.Wait()
			}
			if t.Failed() {
				log, _ := os.ReadFile(a.logs[i])
				t.Logf("--- authority-%d log:\n%s", i+1, log)
			}
		}
	})
	for i := range a.outputs {
		a.waitRunning(i)
	}
	return a
}

func (a *authorityProcs) configPath(i int) string {
	return filepath.Join(a.dir, fmt.Sprintf("authority-%d", i+1), "authority.toml")
}

// launch starts authority i's process.
func (a *authorityProcs) launch(i int) {
	t := a.t
	logPath := filepath.Join(a.dir, fmt.Sprintf("authority-%d", i+1), "authority.log") // appended to across restarts
	out, err := newOutput(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ready.Close() })
	cmd := dieWithTests(exec.Command(binPath, "authority", "run", "--config", a.configPath(i)))
	cmd.Env = append(os.Environ(), ready.Env())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.procs[i], a.logs[i], a.outputs[i], a.ready[i] = cmd, logPath, out, ready
}

func (a *authorityProcs) waitRunning(i int) {
	a.t.Helper()
	if err := a.ready[i].Wait(20 * time.Second); err != nil {
		a.t.Fatalf("authority-%d did not come up: %v", i+1, err)
	}
}

// restart stops authority i gracefully and starts it again, reading its
// config anew (as an operator does after changing it).
func (a *authorityProcs) restart(i int) {
	a.t.Helper()
	a.procs[i].Process.Signal(syscall.SIGTERM)
	a.procs[i].Wait()
	a.launch(i)
	a.waitRunning(i)
}

// uploadableEpoch is the next epoch whose descriptors the authorities still
// take, with a second to spare (they take the one after next at any time).
func (a *authorityProcs) uploadableEpoch() uint64 {
	g := a.cfg.Authority.Genesis
	e := uint64(time.Since(g) / a.epoch)
	if time.Until(g.Add(time.Duration(e)*a.epoch+a.epoch/2)) < time.Second {
		return e + 2
	}
	return e + 1
}

// upload sends every node's descriptor for epoch e to the given authorities.
func (a *authorityProcs) upload(doc *directory.Document, e uint64, to []int) {
	t := a.t
	for _, n := range doc.Nodes {
		id, err := keyfile.ReadIdentity(filepath.Join(a.dir, n.Name, "identity.key"))
		if err != nil {
			t.Fatal(err)
		}
		secret, err := keyfile.ReadX25519(filepath.Join(a.dir, n.Name, "link.key"), keyfile.Link)
		if err != nil {
			t.Fatal(err)
		}
		link, _ := wire.KeypairFromSecret(secret)
		d := directory.Descriptor{Epoch: e, Name: n.Name, Role: n.Role, IdentityKey: id.Public().(ed25519.PublicKey), Address: n.Address}
		copy(d.LinkKey[:], link.Public)
		keys, err := node.NewEpochKeys(t.TempDir(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if d.SphinxKeys, err = keys.Descriptor(e); err != nil {
			t.Fatal(err)
		}
		raw, err := d.Sign(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range to {
			resp, err := http.Post(a.urls[i]+"/v1/descriptor", "application/octet-stream", bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("authority %d refused %s: %s", i+1, n.Name, body)
			}
		}
	}
}

// document waits until authority i says it published the document of
// epoch e, and fetches it.
func (a *authorityProcs) document(i int, e uint64) []byte {
	t := a.t
	if err := a.outputs[i].waitFor(0, 3*a.epoch, "msg=published", fmt.Sprintf("epoch=%d ", e)); err != nil {
		t.Fatalf("authority %d published no document for epoch %d: %v", i+1, e, err)
	}
	resp, err := http.Get(fmt.Sprintf("%s/v1/document/%d", a.urls[i], e))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authority %d: %s: %s", i+1, resp.Status, body)
	}
	return body
}

// TestAuthoritiesTwoOfThree runs three authority processes with a threshold
// of two. Nodes upload their descriptors; the next epoch's document carries
// the authorities' signatures (all three unless one was stalled) and
// verifies with two. With one authority killed,
// the two left still publish the following epoch's document, with their two
// signatures, which verifies; one signature alone would not.
func TestAuthoritiesTwoOfThree(t *testing.T) {
	dir := t.TempDir()
	addrs := freeAddresses(t, 5+3+3)
	run(t, "testnet", "-static", "-dir", dir, "-mixes", "1", "-layers", "3", "-providers", "2", "-addresses", strings.Join(addrs[:5], ","),
		"-metrics-base-port", "0", "-authorities", "3", "-threshold", "2", "-authority-addresses", strings.Join(addrs[5:8], ","), "-epoch", "8s",
		"-authority-metrics-addresses", strings.Join(addrs[8:], ","))
	doc, _ := readDocument(t, dir)
	n, err := config.LoadNetwork(filepath.Join(dir, "network.toml"))
	if err != nil {
		t.Fatal(err)
	}
	trust := directory.Trust{Threshold: n.Threshold, ClockSkew: time.Second}
	for _, k := range n.Authorities {
		b, err := hexKey(k)
		if err != nil {
			t.Fatal(err)
		}
		trust.Authorities = append(trust.Authorities, b)
	}
	a := startAuthorities(t, dir, 3, addrs[5:8])

	e := a.uploadableEpoch()
	a.upload(doc, e, []int{0, 1, 2})
	check := func(data []byte, e uint64, signatures int) {
		t.Helper()
		got, err := directory.Verify(data, trust, a.cfg.Authority.Genesis.Add(time.Duration(e)*a.epoch+time.Second))
		var s directory.Signed
		s.UnmarshalBinary(data)
		if err != nil || got.Epoch != e || len(got.Nodes) != len(doc.Nodes) {
			for _, sig := range s.Signatures {
				t.Logf("signed by %x", sig.Authority)
			}
			for _, k := range trust.Authorities {
				t.Logf("trusted %x", k)
			}
			t.Fatalf("epoch %d: %v, %v", e, got, err)
		}
		if len(s.Signatures) < signatures {
			t.Fatalf("epoch %d: %d signatures, want %d", e, len(s.Signatures), signatures)
		}
		t.Logf("epoch %d: %d nodes, %d signatures", e, len(got.Nodes), len(s.Signatures))
	}
	check(a.document(0, e), e, 2) // normally 3; 2 if a loaded machine stalled one
	checkAuthorityMetrics(t, addrs[8], e)

	a.procs[2].Process.Signal(syscall.SIGKILL)
	a.procs[2].Wait()
	e = max(a.uploadableEpoch(), e+1)
	a.upload(doc, e, []int{0, 1})
	data := a.document(1, e)
	check(data, e, 2)
	one := directory.Trust{Authorities: trust.Authorities, Threshold: 3, ClockSkew: time.Second}
	if _, err := directory.Verify(data, one, a.cfg.Authority.Genesis.Add(time.Duration(e)*a.epoch+time.Second)); err == nil {
		t.Fatal("two signatures passed a threshold of three")
	}
}

func hexKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	return ed25519.PublicKey(b), err
}

// checkAuthorityMetrics reads a running authority's metrics listener: it
// counts the uploads it took and names the epoch it published, and its
// health answers (200 while it holds the current epoch's document, 503
// with the reason before).
func checkAuthorityMetrics(t *testing.T, address string, published uint64) {
	t.Helper()
	resp, err := http.Get("http://" + address + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(raw)
	for _, want := range []string{
		fmt.Sprintf("backchannel_authority_published_epoch %d\n", published),
		`backchannel_authority_uploads_total{result="taken"} `,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("the authority's metrics lack %q:\n%s", want, body)
		}
	}
	resp, err = http.Get("http://" + address + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	health, _ := io.ReadAll(resp.Body)
	healthy := strings.Contains(body, "backchannel_authority_healthy 1")
	if resp.StatusCode == http.StatusOK && string(health) != "ok\n" ||
		resp.StatusCode == http.StatusServiceUnavailable && !strings.Contains(string(health), "no published document for the current epoch") ||
		resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/healthz: %s %q (metrics say healthy: %v)", resp.Status, health, healthy)
	}
}
