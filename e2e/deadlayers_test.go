package e2e

import (
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/pki/directory"
)

// deadMixBefore runs TestDeadMixInEveryLayer's clients on the previous
// release (testdata/previous-release: a fragment failed after 10 attempts)
// to measure what this release changed (RELIABILITY.md); the test then
// reports its figures rather than failing on failed messages.
var deadMixBefore = flag.Bool("dead-mix-before", false, "run TestDeadMixInEveryLayer's clients on the previous release, to measure it")

// deadMixEpoch is TestDeadMixInEveryLayer's epoch: longer epochs keep the
// dead mixes listed longer (RELIABILITY.md measures with 40s).
var deadMixEpoch = flag.Duration("dead-mix-epoch", 8*time.Second, "TestDeadMixInEveryLayer's epoch length")

// TestDeadMixInEveryLayer: two mixes per layer, and one of every layer is
// SIGKILLed and stays down; two users send 100 messages each from right
// after the kills, on the default attempt policy. While the dead mixes
// are listed an attempt gets through only if neither its route nor its
// acknowledgement's crosses one of them (1 in 64); the authorities leave
// them out within two or three epochs, and every message is delivered
// exactly once, none failed. The figures — failures, attempts per fragment,
// time to delivery — are logged for RELIABILITY.md.
func TestDeadMixInEveryLayer(t *testing.T) {
	const each = 100
	epoch := *deadMixEpoch
	nw, authorities := authorityNetwork(t, 2, 1, 1, epoch)
	bin := binPath
	if *deadMixBefore {
		bin, _ = previousRelease(t)
		// Its clients speak classical links only: the nodes take them.
		for _, n := range nw.doc.Nodes {
			nw.kill(n.Name, syscall.SIGTERM)
			allowClassicalLinks(t, nw, n.Name, math.MaxUint64)
			nw.start(n.Name)
		}
	}
	users := make([]*clientProc, 2)
	for i, name := range []string{"alice", "bob"} {
		users[i] = nw.signUpWith(t, bin, name, []string{"provider-a", "provider-b"}[i], filepath.Join(nw.dir, "clients", name))
		users[i].start()
		t.Cleanup(users[i].stop)
	}
	alice, bob := users[0], users[1]
	befriend(alice, bob)
	exchange(t, "before", 1, alice, bob)

	current := uint64(nw.counter("backchannel_epoch", "", "provider-a"))
	doc := nw.doc // the genesis document, which testnet wrote
	if current > 0 {
		var err error
		if doc, err = directory.Verify(authorities.document(0, current), nw.trust, time.Now().Add(2*epoch)); err != nil {
			t.Fatal(err)
		}
	}
	var killed []string
	for layer := uint8(1); layer <= doc.Parameters.Layers; layer++ {
		n := doc.Layer(layer)[0]
		nw.kill(n.Name, syscall.SIGKILL)
		killed = append(killed, n.Name)
	}
	start := time.Now()
	t.Logf("killed %v in epoch %d", killed, current)
	for i := range each {
		alice.cli("send", "bob", fmt.Sprintf("dead layers: alice to bob %d", i))
		bob.cli("send", "alice", fmt.Sprintf("dead layers: bob to alice %d", i))
	}
	var figures []string
	for _, c := range users {
		out, err := c.try("status", "--wait", "--timeout", "20m")
		took := time.Since(start).Round(time.Second)
		delivered, failed := deliveredCount(out), strings.Count(out, " failed")
		sent, again := fragmentCounts(out)
		figures = append(figures, fmt.Sprintf("%s: %d delivered, %d failed; %d fragments sent (%d of them again) for %d messages, %.1f attempts each; settled %v after the kills",
			c.name, delivered, failed, sent, again, each+1, float64(sent)/float64(each+1), took))
		if *deadMixBefore {
			continue
		}
		if err != nil || delivered != each+1 || failed != 0 {
			t.Fatalf("%s: %d delivered, %d failed (%v):\n%s", c.name, delivered, failed, err, lastLines(out, 12))
		}
	}
	for _, f := range figures {
		t.Log(f)
	}
	if *deadMixBefore {
		return
	}
	saved := t.TempDir()
	bob.eachOnce(saved, "dead layers: alice to bob", each)
	alice.eachOnce(saved, "dead layers: bob to alice", each)
}

// fragmentCounts reads `status`'s count of fragments sent and sent again
// (this release's wording and the previous release's).
func fragmentCounts(status string) (sent, again int) {
	m := regexp.MustCompile(`sent: (\d+) (?:message )?fragments \((\d+)`).FindStringSubmatch(status)
	if m == nil {
		return 0, 0
	}
	sent, _ = strconv.Atoi(m[1])
	again, _ = strconv.Atoi(m[2])
	return sent, again
}
