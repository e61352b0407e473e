package webui

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/backchannel/backchannel/internal/ui/control"
)

// TestPageCallsMapToOperations reads the page's scripts: every control
// operation they ask (api.op("…")) and every download they link
// (/api/card, /api/file…) is exactly one operation of control.Commands
// that the web interface may ask.
func TestPageCallsMapToOperations(t *testing.T) {
	ops := regexp.MustCompile(`api\.op\("([a-z-]+)"`)
	links := regexp.MustCompile(`"(/api/[a-z]+)[?"]`)
	asked, linked := map[string]bool{}, map[string]bool{}
	err := fs.WalkDir(embedded, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".js") {
			return err
		}
		b, err := fs.ReadFile(embedded, path)
		if err != nil {
			return err
		}
		for _, m := range ops.FindAllStringSubmatch(string(b), -1) {
			asked[m[1]] = true
		}
		for _, m := range links.FindAllStringSubmatch(string(b), -1) {
			linked[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) < 15 || len(linked) < 4 {
		t.Fatalf("found %d operations and %d links in the page: is it read?", len(asked), len(linked))
	}
	for op := range asked {
		if c, ok := control.Lookup(op); !ok || !c.UI {
			t.Errorf("the page asks %q, which is no operation the web interface may ask", op)
		}
	}
	for link := range linked {
		if link == "/api/op" || link == "/api/session" || link == "/api/unlock" || link == "/api/lock" || link == "/api/activity" || link == "/api/events" {
			continue
		}
		op, ok := downloadOps[link]
		if !ok {
			t.Errorf("the page links %s, which maps to no operation", link)
			continue
		}
		if c, ok := control.Lookup(op); !ok || !c.UI {
			t.Errorf("%s asks %q, which is no operation the web interface may ask", link, op)
		}
	}
}
