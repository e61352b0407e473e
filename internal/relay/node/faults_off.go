//go:build !faults

package node

import (
	"time"

	"github.com/backchannel/backchannel/internal/relay/mailbox"
)

// faults are the fault switches of a test build; in a release build (no
// "faults" tag) they are compiled out and never drop or delay anything.
type faults struct{}

func faultsFromEnvironment() (*faults, error) { return &faults{}, nil }

func (*faults) drop() bool                      { return false }
func (*faults) extraDelay() time.Duration       { return 0 }
func (*faults) recordStored([]mailbox.Delivery) {}
func (*faults) recordHandled([]byte)            {}
