package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

var tokenLine = regexp.MustCompile(`export BACKCHANNEL_OFFICER_TOKEN=([0-9a-f]{64})`)

// TestWebDualControl is issue 23's browser test: an office run by two
// officers from two browsers at once, under dual control. The first
// officer drafts a message in the page; it waits, unsent, and the page
// offers them no way to approve their own draft, only to withdraw or edit
// it (they edit it); the second officer, in
// another browser, unlocks with their own name and passphrase, approves it
// from the drafts view, and the message reaches its recipient; the sent
// message shows who drafted and who approved it, and the audit trail says
// so too.
func TestWebDualControl(t *testing.T) {
	chromium := chromiumPath(t)
	nw := startNetworkWith(t, 1, nil, map[string][]string{"testnet": clientParameters})
	office := nw.newUIUser(t, chromium, "office", "provider-a")
	bob := nw.newClient(t, "bob", "provider-b")
	office.unlock()
	// A conversation opened before its contact exists comes to life when
	// the contact is added, here from the terminal.
	office.do("opening bob before he is a contact",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/c/bob"`),
		waitJS(`document.querySelector("#view h1") && document.querySelector("#view h1").textContent === "No such contact"`),
	)
	bobCard := filepath.Join(t.TempDir(), "bob.card")
	if err := os.WriteFile(bobCard, []byte(bob.cli("card")), 0o600); err != nil {
		t.Fatal(err)
	}
	office.cli("contact", "add", "bob", bobCard)
	office.do("seeing bob's conversation", chromedp.WaitVisible(chromedp.CSS("#compose")))
	officeCard := filepath.Join(t.TempDir(), "office.card")
	if err := os.WriteFile(officeCard, []byte(office.card()), 0o600); err != nil {
		t.Fatal(err)
	}
	bob.cli("contact", "add", "office", officeCard)

	// The second officer is added from the office's terminal, types their
	// own passphrase; from then on the terminal logs in.
	second := "the second officer's long passphrase"
	add := withEnv(office.clientProc, "BACKCHANNEL_NEW_OFFICER_PASSPHRASE="+second)
	add("officer", "add", "--roles", "reader,drafter,releaser,administrator", "second officer")
	login := withEnv(office.clientProc, "BACKCHANNEL_OFFICER_PASSPHRASE="+office.name+" has a long passphrase")
	m := tokenLine.FindStringSubmatch(login("officer", "login"))
	if m == nil {
		t.Fatal("officer login printed no token line")
	}
	office.env = append(office.env, "BACKCHANNEL_OFFICER_TOKEN="+m[1])
	office.cli("dual-control", "on")

	// The first officer drafts in the page.
	text := "The mediator proposes Thursday in Geneva."
	office.open("bob")
	office.do("drafting a message",
		chromedp.SendKeys(chromedp.CSS("#compose"), text+kb.Enter),
		waitJS(`document.querySelector("#toast") && document.querySelector("#toast").textContent.includes("Kept as a draft")`),
		click(chromedp.CSS("#nav-drafts")),
		chromedp.WaitVisible(chromedp.CSS(`#draft-list li[data-state="pending"] .own`)),
	)
	if n := get(office, "counting approve buttons", chromedp.Evaluate[int](`document.querySelectorAll('#draft-list button[data-action="approve"]').length`)); n != 0 {
		t.Fatalf("the drafter's page offers %d approve buttons for their own draft", n)
	}
	if out := office.cli("status"); strings.Contains(out, "Thursday") {
		t.Fatalf("the draft is among the sent messages before its approval:\n%s", out)
	}
	// The drafter edits it in the page before anyone approves it.
	text = "The mediator proposes Friday in Geneva."
	office.do("editing the draft",
		chromedp.SetValue(chromedp.CSS(`#draft-list li[data-state="pending"] textarea.draft-text`), text),
		click(chromedp.CSS(`#draft-list li[data-state="pending"] button[data-action="edit"]`)),
		waitJS(`document.querySelector("#toast").textContent.includes("Edited")`),
	)

	// The second officer, in a browser of their own.
	releaser := &uiUser{clientProc: office.clientProc, url: office.url, tab: browser(t, chromium)}
	releaser.do("unlocking as the second officer",
		chromedp.Navigate(releaser.url),
		chromedp.WaitVisible(chromedp.CSS("#passphrase")),
		chromedp.SendKeys(chromedp.CSS("#officer-name"), "second officer"),
		chromedp.SendKeys(chromedp.CSS("#passphrase"), second),
		click(chromedp.CSS("#unlock")),
		chromedp.WaitVisible(chromedp.CSS("#sidebar")),
		waitJS(`document.querySelector("#officer").textContent === "second officer"`),
		click(chromedp.CSS("#nav-drafts")),
		chromedp.WaitVisible(chromedp.CSS(`#draft-list li[data-state="pending"] button[data-action="approve"]`)),
	)
	releaser.shot("drafts")
	releaser.do("approving the draft",
		click(chromedp.CSS(`#draft-list li[data-state="pending"] button[data-action="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#draft-list li[data-state="approved"]`)),
	)
	bob.cli("inbox", "--wait", "1", "--timeout", "2m")
	if got := bob.inboxTexts(t.TempDir()); got[text] != 1 {
		t.Fatalf("bob's inbox: %v", got)
	}
	office.open("bob")
	office.do("seeing who drafted and approved it",
		waitJS(`[...document.querySelectorAll("li.msg.out .officers")].some(e => e.textContent === "drafted by first officer, approved by second officer")`))
	trail := office.cli("audit", "show")
	for _, want := range []string{"first officer  draft", "second officer  approve", "second officer  send"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail lacks %q:\n%s", want, trail)
		}
	}
}

// withEnv returns a way to run the client's commands with more
// environment.
func withEnv(c *clientProc, env ...string) func(args ...string) string {
	return func(args ...string) string {
		c.t.Helper()
		saved := c.env
		c.env = append(append([]string(nil), c.env...), env...)
		defer func() { c.env = saved }()
		return c.cli(args...)
	}
}
