package identity

import (
	"fmt"
	"strings"

	"rsc.io/qr"
)

// SafetyNumberQR returns the safety number of a and b as a QR code, to scan
// instead of reading 60 digits aloud. It encodes the digits alone, in QR's
// numeric mode at error-correction level M, which keeps the code small
// (version 2, 25 × 25 modules).
func SafetyNumberQR(a, b *Card) (*qr.Code, error) {
	digits := strings.ReplaceAll(SafetyNumber(a, b), " ", "")
	code, err := qr.Encode(digits, qr.M)
	if err != nil {
		return nil, fmt.Errorf("identity: safety number QR code: %w", err)
	}
	return code, nil
}

// QRText draws a QR code for a terminal with half-block characters (two
// modules a character, high), with the four-module quiet zone QR asks for.
func QRText(code *qr.Code) string {
	const quiet = 4
	var b strings.Builder
	for y := -quiet; y < code.Size+quiet; y += 2 {
		for x := -quiet; x < code.Size+quiet; x++ {
			top, bottom := code.Black(x, y), code.Black(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
