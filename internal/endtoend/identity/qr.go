package identity

import (
	"fmt"
	"strings"

	"github.com/skip2/go-qrcode"
)

// SafetyNumberQR returns a safety number (as SafetyNumber writes it) as a
// QR code, to scan instead of reading 60 digits aloud. It encodes the
// digits alone, without the spaces, so that the code uses QR's numeric mode
// and stays small (version 3 at error-correction level M, 29 × 29 modules):
// both sides of a contact draw the same code.
func SafetyNumberQR(number string) (*qrcode.QRCode, error) {
	digits := strings.ReplaceAll(number, " ", "")
	code, err := qrcode.New(digits, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("identity: safety number QR code: %w", err)
	}
	return code, nil
}
