package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// A link's frames all have one size, the network's packet length plus the
// frame's overhead, so that every frame on a link looks the same. When a
// network changes its packet format at an epoch boundary (X25519 to X-Wing
// packets, docs/operating.md), the size changes with it, and for one grace
// period packets of both formats are in flight. A version 2 initiator
// therefore names the frame size it will use, as the TLS application
// protocol (ALPN, RFC 7301) "backchannel-frames/<size>", and the responder
// takes it only if it is one of the sizes it takes now (a TLS
// no_application_protocol alert otherwise): the sizes of the current
// geometry's packet formats. A version 1 link names nothing: its initiator
// is of the previous release, which knows only X25519 packets, and its
// frames are [FrameSizes.Classical].
//
// The name travels in the clear in the ClientHello; it says nothing that
// the length of the link's records does not say.

// frameProtocolPrefix starts the ALPN name of a frame size.
const frameProtocolPrefix = "backchannel-frames/"

// frameProtocol is the ALPN name of frames of size bytes.
func frameProtocol(size int) string { return frameProtocolPrefix + strconv.Itoa(size) }

// parseFrameProtocol returns the frame size an ALPN name gives.
func parseFrameProtocol(name string) (int, error) {
	digits, ok := strings.CutPrefix(name, frameProtocolPrefix)
	if !ok {
		return 0, fmt.Errorf("wire: application protocol %q names no frame size", name)
	}
	size, err := strconv.Atoi(digits)
	if err != nil || strconv.Itoa(size) != digits {
		return 0, fmt.Errorf("wire: application protocol %q names no frame size", name)
	}
	return size, checkFrameSize(size)
}

// FrameSizes are the frame sizes an [Acceptor] takes on one connection.
type FrameSizes struct {
	// Negotiated are the sizes a version 2 initiator may name.
	Negotiated []int
	// Classical is the size of a version 1 link's frames.
	Classical int
}

// OneFrameSize takes frames of size bytes only, on links of either version.
func OneFrameSize(size int) FrameSizes {
	return FrameSizes{Negotiated: []int{size}, Classical: size}
}

func (s FrameSizes) check() error {
	if len(s.Negotiated) == 0 {
		return fmt.Errorf("wire: no frame size to take")
	}
	for _, n := range s.Negotiated {
		if err := checkFrameSize(n); err != nil {
			return err
		}
	}
	return checkFrameSize(s.Classical)
}

// protocols are the ALPN names of the negotiated sizes.
func (s FrameSizes) protocols() []string {
	out := make([]string, len(s.Negotiated))
	for i, n := range s.Negotiated {
		out[i] = frameProtocol(n)
	}
	return out
}
