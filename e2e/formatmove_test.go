package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// TestPacketFormatMove: a network of X25519 packets, written by the
// previous release and with two of its mixes still running it, moves to
// X-Wing packets in place at an epoch boundary its authority's operator
// chose (next_packet_format, docs/operating.md). Until the boundary the
// previous release's mixes carry packets as before; the document of the
// boundary names the X-Wing format and leaves them out (they offer no
// X-Wing key); every node of this release and both clients move to it
// without a restart, the clients connecting again for the larger frames
// and the nodes dialling their links again; messages queued just before
// the boundary and after it are all delivered exactly once, and no node
// drops a packet for want of room in its links' frames.
//
// In a checkout without the previous release's commit (a shallow clone),
// this release writes the X25519 network and runs every node: the move is
// tested all the same, the previous release's part is not.
func TestPacketFormatMove(t *testing.T) {
	old, commit, missing := findPreviousRelease(t)
	gen, oldMixes := old, map[string]string{"mix-1-a": old, "mix-3-a": old}
	var format []string
	if missing != "" {
		t.Logf("without the previous release (%s): this release writes the network and runs every node", missing)
		gen, oldMixes, format = binPath, nil, []string{"-packet-format", "x25519"}
	} else {
		t.Logf("previous release: %s", commit)
	}
	const epoch = 10 * time.Second
	const nodes = 2 + 3*2
	addrs := freeAddresses(t, 2*nodes+1)
	dir := t.TempDir()
	args := []string{"testnet", "-dir", dir, "-mixes", "2", "-layers", "3", "-providers", "2",
		"-addresses", strings.Join(addrs[:nodes], ","), "-metrics-addresses", strings.Join(addrs[nodes:2*nodes], ","),
		"-mean-delay", "1ms", "-authorities", "1", "-threshold", "1",
		"-authority-addresses", addrs[2*nodes], "-epoch", epoch.String(), "-clock-skew", "1s"}
	runBin(t, gen, append(append(args, format...), clientParameters...)...)

	// The operator of the authority chooses the epoch of the move, a few
	// epochs ahead: the nodes upload their descriptors, with keys of both
	// formats, for the two epochs after the current one.
	cfgPath := filepath.Join(dir, "authority-1", "authority.toml")
	acfg, err := config.LoadAuthority(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	move := uint64(time.Since(acfg.Authority.Genesis)/epoch) + 5
	moveStart := acfg.Authority.Genesis.Add(time.Duration(move) * epoch)
	addToTable(t, cfgPath, "parameters", fmt.Sprintf("next_packet_format = \"xwing\"\nnext_packet_format_epoch = %d\n", move))
	authorities := startAuthorities(t, dir, 1, addrs[2*nodes:])

	nw := loadNetwork(t, dir, addrs[nodes:2*nodes], nil)
	nw.bins = oldMixes
	t.Cleanup(nw.stopAll)
	var upgraded []string
	for _, n := range nw.doc.Nodes {
		if _, isOld := nw.bins[n.Name]; !isOld {
			allowClassicalLinks(t, nw, n.Name, move+1000)
			upgraded = append(upgraded, n.Name)
		}
		nw.start(n.Name)
	}
	alice := nw.newClient(t, "alice", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	befriend(alice, bob)
	exchange(t, "before the move", 3, alice, bob)
	if e := uint64(nw.counter("backchannel_epoch", "", "provider-a")); e >= move {
		// A machine so loaded that this took 40 s: the previous
		// release's mixes still carried packets until the move.
		t.Logf("the messages before the move took until epoch %d, the move's", e)
	}
	if got := nw.counter("backchannel_packets_in_total", "", "mix-1-a", "mix-3-a"); got == 0 {
		t.Fatal("mix-1-a and mix-3-a carried no packet before the move")
	}

	// Messages queued now cross the boundary.
	for i := range 5 {
		alice.cli("send", "bob", fmt.Sprintf("across the move: alice to bob #%d", i))
		bob.cli("send", "alice", fmt.Sprintf("across the move: bob to alice #%d", i))
	}
	for _, name := range upgraded {
		if err := nw.outputs[name].waitFor(0, time.Until(moveStart)+2*epoch, "new epoch", fmt.Sprintf("epoch=%d ", move)); err != nil {
			t.Fatalf("%s did not move to epoch %d: %v", name, move, err)
		}
	}
	doc, err := directory.VerifySignatures(authorities.document(0, move), nw.trust)
	if err != nil {
		t.Fatalf("the document of epoch %d: %v", move, err)
	}
	if doc.Parameters.Geometry.Scheme != sphinx.XWing {
		t.Fatalf("the document of epoch %d names the %v packet format", move, doc.Parameters.Geometry.Scheme)
	}
	for name := range nw.bins {
		if doc.Node(nw.node(name).IdentityKey) != nil {
			t.Fatalf("%s, of the previous release, is in the X-Wing document of epoch %d", name, move)
		}
	}
	for _, c := range []*clientProc{alice, bob} {
		if err := c.out.waitFor(0, 2*epoch, "the network's packet format", "format=xwing"); err != nil {
			t.Fatalf("%s did not take the X-Wing format: %v", c.name, err)
		}
		if err := c.out.waitFor(0, epoch, "connecting again for the network's new packet format"); err != nil {
			t.Fatalf("%s did not connect again for the larger frames: %v", c.name, err)
		}
	}
	t.Logf("every node of this release and both clients are in epoch %d, of X-Wing packets", move)
	exchange(t, "after the move", 5, alice, bob)
	for _, pair := range [][2]*clientProc{{alice, bob}, {bob, alice}} {
		texts := pair[1].inboxTexts(t.TempDir())
		for i := range 5 {
			if want := fmt.Sprintf("across the move: %s to %s #%d", pair[0].name, pair[1].name, i); texts[want] != 1 {
				t.Fatalf("%s's inbox has %q %d times, want once", pair[1].name, want, texts[want])
			}
		}
	}
	if got := nw.counter("backchannel_packets_dropped_total", "link_frames_too_small", upgraded...); got != 0 {
		t.Fatalf("nodes dropped %v packets their links' frames could not carry", got)
	}
}

// addToTable adds lines at the start of a TOML file's table, as an
// operator edits a configuration.
func addToTable(t *testing.T, path, table, lines string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header := "[" + table + "]\n"
	edited := strings.Replace(string(b), header, header+lines, 1)
	if edited == string(b) {
		t.Fatalf("%s has no %s table", path, header)
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
}
