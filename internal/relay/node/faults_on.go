//go:build faults

package node

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// faults are the fault switches of a test build (go build -tags faults),
// set from the environment so that no config file can turn them on:
//
//   - BACKCHANNEL_FAULT_DROP: the share of packets (0 to 1) to drop at
//     random after unwrapping, as a lossy or malicious mix would;
//   - BACKCHANNEL_FAULT_DELAY: a delay added to every forwarded packet;
//   - BACKCHANNEL_FAULT_SEED: the seed of the drop decisions (default 1);
//   - BACKCHANNEL_RECORD_STORED: a file to which a provider appends every
//     packet it stores in a mailbox, one "mailbox hex, packet hex" line
//     each, as a provider that records for later would
//     (e2e/TestRecordedTrafficAfterX25519Falls);
//   - BACKCHANNEL_RECORD_HANDLED: a file to which a node appends the
//     packets it takes from links, before it unwraps them, one hex line
//     each, as a hostile relay that records for later would (same test):
//     the first BACKCHANNEL_RECORD_HANDLED_MAX of them (default 1,000).
//
// A release build has none of this (faults_off.go).
type faults struct {
	share float64
	delay time.Duration

	mu      sync.Mutex
	rng     *rand.Rand // guarded by mu
	stored  *os.File   // guarded by mu
	handled *os.File   // guarded by mu
	// handledLeft is how many more packets handled records.
	handledLeft int // guarded by mu
}

func faultsFromEnvironment() (*faults, error) {
	f := &faults{}
	if v := os.Getenv("BACKCHANNEL_FAULT_DROP"); v != "" {
		share, err := strconv.ParseFloat(v, 64)
		if err != nil || share < 0 || share > 1 {
			return nil, fmt.Errorf("node: BACKCHANNEL_FAULT_DROP=%q, want a share from 0 to 1", v)
		}
		f.share = share
	}
	if v := os.Getenv("BACKCHANNEL_FAULT_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("node: BACKCHANNEL_FAULT_DELAY=%q, want a non-negative duration", v)
		}
		f.delay = d
	}
	seed := uint64(1)
	if v := os.Getenv("BACKCHANNEL_FAULT_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("node: BACKCHANNEL_FAULT_SEED=%q, want an unsigned integer", v)
		}
		seed = s
	}
	f.rng = rand.New(rand.NewPCG(seed, seed))
	if v := os.Getenv("BACKCHANNEL_RECORD_STORED"); v != "" {
		file, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("node: BACKCHANNEL_RECORD_STORED: %w", err)
		}
		f.stored = file
	}
	if v := os.Getenv("BACKCHANNEL_RECORD_HANDLED"); v != "" {
		file, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("node: BACKCHANNEL_RECORD_HANDLED: %w", err)
		}
		f.handled, f.handledLeft = file, 1000
		if v := os.Getenv("BACKCHANNEL_RECORD_HANDLED_MAX"); v != "" {
			if f.handledLeft, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("node: BACKCHANNEL_RECORD_HANDLED_MAX=%q, want a count", v)
			}
		}
	}
	return f, nil
}

// recordHandled appends a packet taken from a link to the recording.
func (f *faults) recordHandled(packet []byte) {
	if f.handled == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handledLeft <= 0 {
		return
	}
	f.handledLeft--
	fmt.Fprintf(f.handled, "%x\n", packet)
}

// recordStored appends the packets about to be stored to the recording.
func (f *faults) recordStored(deliveries []mailbox.Delivery) {
	if f.stored == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range deliveries {
		fmt.Fprintf(f.stored, "%x %x\n", d.Mailbox[:], d.Packet)
	}
}

func (f *faults) drop() bool {
	if f.share == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < f.share
}

func (f *faults) extraDelay() time.Duration { return f.delay }
