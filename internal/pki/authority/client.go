package authority

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/backchannel/backchannel/internal/base/clock"
	"github.com/backchannel/backchannel/internal/pki/directory"
)

// Client is a node's side of the authorities' HTTP API (Server): it uploads
// the node's signed descriptors and fetches published documents, keeping
// only those with a threshold of valid signatures. It is safe for
// concurrent use.
type Client struct {
	// URLs are the authorities' API base URLs.
	URLs []string
	// Trust is what a document's signatures must satisfy, and the clock
	// skew allowed against an authority's clock.
	Trust directory.Trust
	// HTTP defaults to a client with a 5-second timeout.
	HTTP  *http.Client
	Clock clock.Clock
	// Say logs what the node's operator should know (an authority that
	// refuses, a document refused, a clock off); key names the message so
	// that the caller can say each once. Nil says nothing.
	Say func(key string, level slog.Level, msg string, args ...any)
}

// defaultHTTP is the HTTP client of a Client without one.
var defaultHTTP = &http.Client{Timeout: 5 * time.Second}

// Upload posts a signed descriptor to the authority at url.
func (c *Client) Upload(ctx context.Context, url string, descriptor []byte) error {
	_, err := c.request(ctx, http.MethodPost, url, "/v1/descriptor", descriptor)
	return err
}

// Document gets the document at /v1/document/{which} ("current", "next" or
// an epoch number) from the first authority that serves one of epoch want
// (any epoch if want is 0) with enough valid signatures. Its times are the
// caller's to check.
func (c *Client) Document(ctx context.Context, which string, want uint64) ([]byte, *directory.Document, error) {
	var errs []error
	for _, u := range c.URLs {
		raw, err := c.request(ctx, http.MethodGet, u, "/v1/document/"+which, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		doc, err := directory.VerifySignatures(raw, c.Trust)
		if err == nil && want != 0 && doc.Epoch != want {
			err = fmt.Errorf("a document of epoch %d for epoch %d", doc.Epoch, want)
		}
		if err != nil {
			c.say(fmt.Sprintf("refused %s %s", u, which), slog.LevelError, "refused a document from an authority", "authority", u, "epoch", which, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		return raw, doc, nil
	}
	return nil, nil, fmt.Errorf("authority: no document for epoch %s: %w", which, errors.Join(errs...))
}

// request makes one request to an authority. It also compares the
// authority's clock (its Date header) with this host's, and says so if
// they differ by more than the allowed skew.
func (c *Client) request(ctx context.Context, method, base, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := c.HTTP
	if h == nil {
		h = defaultHTTP
	}
	resp, err := h.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		skew := c.Trust.ClockSkew
		if off := c.Clock.Now().Sub(date); off > skew+time.Second || off < -skew-time.Second {
			c.say("clock "+base, slog.LevelError, "this host's clock is off the authority's by more than the allowed skew: fix the clock",
				"authority", base, "off", off.Round(time.Second), "clock_skew", skew)
		}
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out))
	}
	return out, nil
}

func (c *Client) say(key string, level slog.Level, msg string, args ...any) {
	if c.Say != nil {
		c.Say(key, level, msg, args...)
	}
}
