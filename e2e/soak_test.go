package e2e

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backchannel/backchannel/internal/client"
)

// soakFor, when set, runs TestSoak for that long (scripts/soak.sh); the
// ordinary test run skips it.
var soakFor = flag.Duration("soak", 0, "run the chaos soak for this long (scripts/soak.sh)")

// soakClients is how many users the soak runs, in this process, each a
// full client (its own keys, vault, link, cover traffic and sessions).
const soakClients = 100

// rssKiB reads a process's resident memory.
func rssKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kib
		}
	}
	return 0
}

// TestSoak: a network of real processes (2 providers, 3 layers of 2 mixes)
// and 100 users sending each other messages for the -soak duration, while
// a chaos schedule SIGKILLs a random node every 30 seconds and restarts it
// 5 seconds later. Afterwards every message sent has been delivered
// exactly once, and the nodes that ran throughout and the clients' process
// kept their memory flat. It reports the figures for RELIABILITY.md.
func TestSoak(t *testing.T) {
	if *soakFor == 0 {
		t.Skip("the soak runs from scripts/soak.sh (go test -run TestSoak -soak 10m ./e2e)")
	}
	params := []string{"-poll-interval", "200ms", "-send-rate", "2", "-loop-rate", "0.5", "-drop-rate", "0.5"}
	nw := startNetworkWith(t, 2, nil, map[string][]string{"testnet": params})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The users: made with the command line (init, add-user), then run
	// in this process.
	clients := make([]*client.Client, soakClients)
	names := make([]string, soakClients)
	var running sync.WaitGroup
	for i := range clients {
		names[i] = fmt.Sprintf("user-%03d", i)
		provider := []string{"provider-a", "provider-b"}[i%2]
		c := nw.signUp(t, names[i], provider, filepath.Join(nw.dir, "clients", names[i]))
		opened, err := client.Open(client.Config{Dir: c.dir, Passphrase: []byte(names[i] + " has a long passphrase"), Rand: rand.Reader})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = opened
		running.Add(1)
		go func() {
			defer running.Done()
			if err := opened.Run(ctx); err != nil {
				t.Errorf("%s: %v", names[i], err)
			}
		}()
	}
	defer func() {
		cancel()
		running.Wait()
		for _, c := range clients {
			c.Close()
		}
	}()
	// Each user knows the next two around the ring.
	for i := range clients {
		for _, d := range []int{1, 2} {
			j := (i + d) % soakClients
			if err := clients[i].AddContact(names[j], clients[j].Self()); err != nil {
				t.Fatal(err)
			}
			if err := clients[j].AddContact(names[i], clients[i].Self()); err != nil {
				t.Fatal(err)
			}
		}
	}

	rng := mrand.New(mrand.NewChaCha8([32]byte{'s', 'o', 'a', 'k'}))
	var sent []struct{ from, to, text string }
	// Resident memory, sampled every 10 s, per process: a node restarted
	// is a new process ("mix-2-a, run 2").
	memory := map[string][]int{}
	killed := map[string]int{}
	sample := func() {
		for _, name := range nw.names() {
			if cmd := nw.procs[name]; cmd != nil {
				run := fmt.Sprintf("%s, run %d", name, killed[name]+1)
				memory[run] = append(memory[run], rssKiB(cmd.Process.Pid))
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		memory["clients (heap)"] = append(memory["clients (heap)"], int(ms.HeapAlloc>>10))
	}
	start := time.Now()
	nextChaos := start.Add(30 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	t.Logf("soak: %d users, %v, a node killed every 30 s", soakClients, *soakFor)
	for time.Since(start) < *soakFor {
		<-tick.C
		// About one message a second across the network, each from a
		// random user to one of its contacts.
		i := rng.IntN(soakClients)
		j := (i + 1 + rng.IntN(2)) % soakClients
		text := fmt.Sprintf("soak message %d from %s to %s", len(sent), names[i], names[j])
		if _, err := clients[i].Send(names[j], client.Content{Kind: client.Text, Body: []byte(text)}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, struct{ from, to, text string }{names[i], names[j], text})
		if len(sent)%10 == 0 {
			sample()
		}
		if time.Now().After(nextChaos) {
			nextChaos = nextChaos.Add(30 * time.Second)
			all := nw.names()
			victim := all[rng.IntN(len(all))]
			killed[victim]++
			nw.kill(victim, syscall.SIGKILL)
			restartAt := time.Now().Add(5 * time.Second)
			for time.Now().Before(restartAt) {
				<-tick.C
			}
			nw.start(victim)
		}
	}
	sample()
	t.Logf("soak: %d messages sent in %v; waiting for them to settle", len(sent), time.Since(start).Round(time.Second))

	// Every message is delivered (acknowledged) or the wait runs out.
	settle := time.Now().Add(5 * time.Minute)
	for {
		pending, failed := 0, 0
		for _, c := range clients {
			for _, m := range c.Outbox() {
				switch m.Status {
				case client.Queued, client.Sent:
					pending++
				case client.Failed:
					failed++
				}
			}
		}
		if failed > 0 {
			t.Fatalf("%d messages failed", failed)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(settle) {
			t.Fatalf("%d messages still not delivered 5 minutes after the soak", pending)
		}
		<-tick.C
	}
	settled := time.Since(start)
	received := map[string]int{}
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	for i, c := range clients {
		msgs, err := c.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			received[names[i]+"\x00"+m.Text]++
		}
	}
	for _, m := range sent {
		if n := received[m.to+"\x00"+m.text]; n != 1 {
			t.Fatalf("%q arrived %d times", m.text, n)
		}
	}
	var report []string
	report = append(report, fmt.Sprintf("%d messages sent, %d delivered exactly once, 0 lost, 0 duplicated; all settled %v after the start",
		len(sent), len(sent), settled.Round(time.Second)))
	var victims []string
	for v, n := range killed {
		victims = append(victims, fmt.Sprintf("%s ×%d", v, n))
	}
	sort.Strings(victims)
	report = append(report, "killed (SIGKILL) and restarted: "+strings.Join(victims, ", "))
	// A process is judged from its second sample (after its start) to
	// its last, if it lived for at least a minute of samples.
	var mem []string
	for run, samples := range memory {
		if len(samples) < 7 {
			continue
		}
		mem = append(mem, fmt.Sprintf("%s %d→%d KiB (%d samples)", run, samples[1], samples[len(samples)-1], len(samples)))
	}
	sort.Strings(mem)
	report = append(report, "resident memory, second sample → last, of each process that ran a minute or more: "+strings.Join(mem, "; "))
	for _, line := range report {
		t.Log("soak: " + line)
	}
	if path := os.Getenv("BACKCHANNEL_SOAK_REPORT"); path != "" {
		os.WriteFile(path, []byte(strings.Join(report, "\n")+"\n"), 0o644)
	}
	for run, samples := range memory {
		if len(samples) < 7 {
			continue
		}
		if first, last := samples[1], samples[len(samples)-1]; last > first*3/2+8192 {
			t.Errorf("%s: memory grew from %d to %d KiB", run, first, last)
		}
	}
}
