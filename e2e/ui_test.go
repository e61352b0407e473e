package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// uiScreenshots, when set, is where TestWebInterface saves screenshots of
// the main screens (docs/ui in the repository):
//
//	go test ./e2e -run TestWebInterface -ui-screenshots ../docs/ui
var uiScreenshots = flag.String("ui-screenshots", "", "save screenshots of the web interface's screens in this directory")

var uiAddress = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]{64}`)

// chromiumPath finds Debian's Chromium (or another Chrome). The README's
// test script installs it and sets BACKCHANNEL_REQUIRE_BROWSER, so that in
// CI a missing browser fails rather than skips.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("BACKCHANNEL_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found, and BACKCHANNEL_REQUIRE_BROWSER is set (scripts/test.sh installs Debian's chromium)")
	}
	t.Skip("no Chromium found: install Debian's chromium package (scripts/test.sh does) to run the browser tests")
	return ""
}

// browser starts a headless Chromium. Each user has a browser of its own,
// as people do: a tab in the background of a shared window gets no input
// events.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// uiUser is a user whose client daemon runs with its web interface
// (`backchannel ui`), driven through a browser tab of its own.
type uiUser struct {
	*clientProc
	url string
	tab context.Context
}

// newUIUser signs a user up at the provider, starts `backchannel ui` and
// opens a browser of its own; args are more flags of `ui`.
func (nw *network) newUIUser(t *testing.T, chromium, name, provider string, args ...string) *uiUser {
	t.Helper()
	c := nw.signUp(t, name, provider, filepath.Join(nw.dir, "clients", name))
	c.log = filepath.Join(t.TempDir(), name+".log")
	out, err := newOutput(c.log)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = dieWithTests(exec.Command(binPath, append([]string{"ui", "--listen", "127.0.0.1:0"}, args...)...))
	c.cmd.Env = c.env
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.out = out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	if err := out.waitFor(0, 20*time.Second, "http://127.0.0.1:"); err != nil {
		log, _ := os.ReadFile(c.log)
		t.Fatalf("%s's interface did not come up: %v\n%s", name, err, log)
	}
	log, _ := os.ReadFile(c.log)
	addr := uiAddress.FindString(string(log))
	if addr == "" {
		t.Fatalf("%s: no interface address with a token in:\n%s", name, log)
	}
	if u, err := url.Parse(addr); err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("%s: the interface is at %q, not on 127.0.0.1", name, addr)
	}
	tab := browser(t, chromium)
	// What the page writes to its console goes to the test's log.
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			t.Logf("%s's page: %v", name, m)
		}
	}()
	return &uiUser{clientProc: c, url: addr, tab: tab}
}

// do runs browser actions, failing the test with what the page shows if
// they do not complete within a minute.
func (u *uiUser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	get(u, what, chromedp.Steps(actions...))
}

// get runs a browser action that returns a value, as do does.
func get[T any](u *uiUser, what string, action chromedp.Action[T]) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.tab, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		dump, cancelDump := context.WithTimeout(u.tab, 5*time.Second)
		text, derr := chromedp.Run(dump, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText + "\n" + document.body.outerHTML.slice(0, 3000)`))
		cancelDump()
		if derr != nil {
			text = "(nothing: " + derr.Error() + ")"
		}
		u.t.Fatalf("%s: %s: %v\nthe page shows:\n%s", u.name, what, err, text)
	}
	return v
}

// click clicks the first element the selector matches, once it is
// visible. The page rebuilds a list when what it shows changes, so an
// element found may be replaced before the click lands; the click is then
// tried again on the new one.
func click(sel chromedp.CSS) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Click(sel)(ctx, t)
			if err == nil || !strings.Contains(err.Error(), "Could not find node") || ctx.Err() != nil {
				return chromedp.Void{}, err
			}
		}
	}
}

// waitJS waits until the JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))
}

// unlock opens the interface and types the passphrase.
func (u *uiUser) unlock() {
	u.do("unlocking",
		chromedp.Navigate(u.url),
		chromedp.WaitVisible(chromedp.CSS("#passphrase")),
		chromedp.SendKeys(chromedp.CSS("#passphrase"), u.name+" has a long passphrase"),
		click(chromedp.CSS("#unlock")),
		chromedp.WaitVisible(chromedp.CSS("#sidebar")),
	)
}

// card returns the user's card as the "My card" screen shows it.
func (u *uiUser) card() string {
	u.do("opening the card",
		click(chromedp.CSS("#nav-me")),
		waitJS(`document.querySelector("#my-card") && document.querySelector("#my-card").value.length > 0`),
	)
	return get(u, "reading the card", chromedp.Value(chromedp.CSS("#my-card")))
}

// addContact adds a contact from its card's text.
func (u *uiUser) addContact(name, card string) {
	u.do("adding "+name,
		click(chromedp.CSS("#nav-add")),
		chromedp.WaitVisible(chromedp.CSS("#contact-name")),
		chromedp.SendKeys(chromedp.CSS("#contact-name"), name),
		chromedp.SetValue(chromedp.CSS("#contact-card"), card),
		click(chromedp.CSS("#contact-add")),
		chromedp.WaitVisible(chromedp.CSS(`#sidebar a[data-contact="`+name+`"]`)),
		// The page opens the new contact's conversation.
		waitJS(fmt.Sprintf(`location.hash === "#/c/" + encodeURIComponent(%q) && document.querySelector("#compose") !== null`, name)),
	)
}

// befriendUI exchanges two users' cards through their interfaces.
func befriendUI(a, b *uiUser) {
	b.addContact(a.name, a.card())
	a.addContact(b.name, b.card())
}

// open opens the conversation with a contact.
func (u *uiUser) open(contact string) {
	u.do("opening "+contact,
		click(chromedp.CSS(`#sidebar a[data-contact="`+contact+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#compose")),
	)
}

// send types a message to the contact and waits until it shows as
// delivered.
func (u *uiUser) send(contact, text string) {
	u.open(contact)
	u.do("sending to "+contact,
		chromedp.SendKeys(chromedp.CSS("#compose"), text+kb.Enter),
		waitJS(fmt.Sprintf(`[...document.querySelectorAll("li.msg.out")].some(m => m.querySelector(".text").textContent === %q && m.dataset.status === "delivered")`, text)),
	)
}

// waitMessage waits until the conversation with contact shows text as
// received.
func (u *uiUser) waitMessage(contact, text string) {
	u.open(contact)
	u.do("waiting for a message from "+contact,
		waitJS(fmt.Sprintf(`[...document.querySelectorAll("li.msg.in .text")].some(m => m.textContent === %q)`, text)))
}

// shot saves a screenshot of the tab when screenshots were asked for.
func (u *uiUser) shot(name string) {
	if *uiScreenshots == "" {
		return
	}
	png := get(u, "taking a screenshot", chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(*uiScreenshots, name+".png"), png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// TestWebInterface: three users at two providers, each with a client
// daemon process serving its web interface, driven only through headless
// Chromium: they exchange cards; the mediator introduces alice and bob,
// who accept and then talk, seeing their messages delivered, and a file;
// alice sends bob a message through the mediator's desk with a signed
// receipt; alice asks bob a mutual interest question and both see the
// result. Then the mediator wipes its state from the page.
func TestWebInterface(t *testing.T) {
	chromium := chromiumPath(t)
	nw := startNetworkWith(t, 1, nil, map[string][]string{"testnet": clientParameters})
	mediator := nw.newUIUser(t, chromium, "mediator", "provider-a")
	alice := nw.newUIUser(t, chromium, "alice", "provider-a")
	bob := nw.newUIUser(t, chromium, "bob", "provider-b")
	if *uiScreenshots != "" {
		mediator.do("navigating", chromedp.Navigate(mediator.url), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
		mediator.shot("unlock")
	}
	for _, u := range []*uiUser{mediator, alice, bob} {
		u.unlock()
	}
	befriendUI(mediator, alice)
	befriendUI(mediator, bob)

	// The mediator introduces them.
	mediator.do("introducing alice and bob",
		click(chromedp.CSS("#nav-introductions")),
		chromedp.WaitVisible(chromedp.CSS("#intro-a")),
		chromedp.SetValue(chromedp.CSS("#intro-a"), "alice"),
		chromedp.SetValue(chromedp.CSS("#intro-b"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#intro-label-a"), "a party in country Y"),
		chromedp.SendKeys(chromedp.CSS("#intro-label-b"), "a party in country X"),
		chromedp.SendKeys(chromedp.CSS("#intro-note"), "as agreed in Oslo"),
		click(chromedp.CSS("#introduce")),
		chromedp.WaitVisible(chromedp.CSS(`#intro-made li[data-state]`)),
	)
	for _, u := range []*uiUser{alice, bob} {
		u.do("seeing the introduction",
			click(chromedp.CSS("#nav-introductions")),
			chromedp.WaitVisible(chromedp.CSS(`#intro-incoming li[data-state="pending"] button[data-action="accept"]`)),
		)
		if u == bob {
			u.shot("introductions")
		}
		u.do("accepting it", click(chromedp.CSS(`#intro-incoming li[data-state="pending"] button[data-action="accept"]`)))
	}
	alice.do("seeing bob as a contact", chromedp.WaitVisible(chromedp.CSS(`#sidebar a[data-contact="a party in country Y"]`)))
	bob.do("seeing alice as a contact", chromedp.WaitVisible(chromedp.CSS(`#sidebar a[data-contact="a party in country X"]`)))

	// They talk, and each sees the other's message delivered.
	alice.send("a party in country Y", "We are ready to talk.")
	bob.waitMessage("a party in country X", "We are ready to talk.")
	bob.send("a party in country X", "So are we. Thursday?")
	alice.waitMessage("a party in country Y", "So are we. Thursday?")

	// A file, attached in the page.
	terms := filepath.Join(t.TempDir(), "terms.txt")
	if err := os.WriteFile(terms, []byte(strings.Repeat("article 1: a ceasefire\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.do("attaching a file",
		chromedp.SetUploadFiles(chromedp.CSS("#attach"), []string{terms}),
		waitJS(`[...document.querySelectorAll("li.msg.out")].some(m => m.querySelector("a.file") && m.querySelector("a.file").textContent.includes("terms.txt") && m.dataset.status === "delivered")`))
	bob.open("a party in country X")
	bob.do("seeing the file", waitJS(`[...document.querySelectorAll("li.msg.in a.file")].some(a => a.textContent.includes("terms.txt") && a.getAttribute("href").startsWith("/api/file?id="))`))
	alice.shot("conversation")
	alice.do("marking bob verified",
		click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS(`#sidebar a[data-contact="a party in country Y"] .pill.ok`)),
	)

	// Alice gives the mediator a message for bob, with a signed receipt.
	alice.do("conveying through the mediator",
		click(chromedp.CSS("#nav-desk")),
		chromedp.WaitVisible(chromedp.CSS("#convey-via")),
		chromedp.SetValue(chromedp.CSS("#convey-via"), "mediator"),
		chromedp.SendKeys(chromedp.CSS("#convey-to"), "the delegation of Y"),
		chromedp.SendKeys(chromedp.CSS("#convey-text"), "Our offer stands until Friday."),
		chromedp.SetValue(chromedp.CSS("#convey-receipt"), "signed"),
		click(chromedp.CSS("#convey")),
		chromedp.WaitVisible(chromedp.CSS(`#conveyances li[data-id]`)),
	)
	mediator.do("reading the desk",
		click(chromedp.CSS("#nav-desk")),
		chromedp.WaitVisible(chromedp.CSS(`#desk-entries li[data-state="pending"]`)),
		chromedp.SetValue(chromedp.CSS(`#desk-entries li[data-state="pending"] select`), "bob"),
		chromedp.SendKeys(chromedp.CSS(`#desk-entries li[data-state="pending"] input[aria-label="How the sender is shown"]`), "the delegation of X"),
		chromedp.SendKeys(chromedp.CSS(`#desk-entries li[data-state="pending"] input[aria-label="Your note"]`), "I vouch for this offer"),
	)
	mediator.shot("desk")
	// Bob is in alice's conversation when the mediator's message comes:
	// its row in his sidebar counts it, and is updated in place (a row
	// rebuilt between a click's press and release swallows the click).
	mediatorRow := `document.querySelector('#sidebar a[data-contact="mediator"]')`
	get(bob, "marking the mediator's row", chromedp.Evaluate[bool](`(window.mediatorRow = `+mediatorRow+`) !== null`))
	mediator.do("passing it on",
		click(chromedp.CSS(`#desk-entries li[data-state="pending"] button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#desk-entries li[data-state="delivered"]`)),
	)
	bob.do("seeing a message from the mediator counted",
		waitJS(mediatorRow+`.querySelector(".count").textContent === "1"`))
	if same := get(bob, "comparing the mediator's row", chromedp.Evaluate[bool](`window.mediatorRow === `+mediatorRow)); !same {
		t.Error("bob's sidebar rebuilt the mediator's row when a message came in; a click on it at that moment would have been lost")
	}
	bob.waitMessage("mediator", "Our offer stands until Friday.")
	bob.do("seeing the count cleared once read", waitJS(mediatorRow+`.querySelector(".count").textContent === ""`))
	alice.do("getting the receipt",
		click(chromedp.CSS("#nav-desk")),
		chromedp.WaitVisible(chromedp.CSS(`#conveyances li a[href^="/api/proof"]`)),
	)

	// A mutual interest check, asked and answered in the interface.
	alice.do("asking a question",
		click(chromedp.CSS("#nav-checks")),
		chromedp.WaitVisible(chromedp.CSS("#check-contact")),
		chromedp.SetValue(chromedp.CSS("#check-contact"), "a party in country Y"),
		chromedp.SendKeys(chromedp.CSS("#check-question"), "Would you meet in Geneva next month?"),
		chromedp.SetValue(chromedp.CSS("#check-answer"), "yes"),
		// The result shows when the time to answer is up.
		chromedp.SetValue(chromedp.CSS("#check-within"), "20"),
		chromedp.SetValue(chromedp.CSS("#check-within-unit"), "1"),
		click(chromedp.CSS("#check-ask")),
		chromedp.WaitVisible(chromedp.CSS(`#check-list li[data-result="pending"]`)),
	)
	bob.do("answering it",
		click(chromedp.CSS("#nav-checks")),
		chromedp.WaitVisible(chromedp.CSS(`#check-list li button[data-answer="yes"]`)),
	)
	bob.shot("checks")
	bob.do("answering yes", click(chromedp.CSS(`#check-list li button[data-answer="yes"]`)))
	for _, u := range []*uiUser{alice, bob} {
		u.do("seeing the result", chromedp.WaitVisible(chromedp.CSS(`#check-list li[data-result^="match"]`)))
	}
	alice.do("", click(chromedp.CSS("#nav-checks")))
	alice.shot("check-result")

	if *uiScreenshots != "" {
		alice.do("network", click(chromedp.CSS("#nav-network")), chromedp.WaitVisible(chromedp.CSS("#net-cover")))
		alice.shot("network")
		alice.do("card", click(chromedp.CSS("#nav-me")), waitJS(`document.querySelector("#my-card").value.length > 0`))
		alice.shot("card")
		alice.open("a party in country Y")
		alice.do("a contact's safety number", click(chromedp.CSS(".qr-box summary")), waitJS(`document.querySelector(".qr").complete && document.querySelector(".qr").naturalWidth > 0`))
		alice.shot("contact")
		bob.do("a phone-sized window", chromedp.EmulateViewport(390, 800, chromedp.EmulateScale(2), chromedp.EmulateMobile),
			click(chromedp.CSS("main .back")), chromedp.WaitVisible(chromedp.CSS("#sidebar")))
		bob.shot("phone-contacts")
		bob.open("a party in country X")
		bob.shot("phone")
	}

	// The mediator wipes everything from the page: the page says so and
	// the daemon stops.
	mark := mediator.out.mark()
	mediator.do("wiping",
		click(chromedp.CSS("#nav-me")),
		chromedp.SendKeys(chromedp.CSS("#wipe-confirm"), "WIPE"),
		click(chromedp.CSS("#wipe")),
		chromedp.WaitVisible(chromedp.CSS("#wiped-screen")))
	if err := mediator.out.waitFor(mark, 30*time.Second, "the state was wiped; the client stops"); err != nil {
		t.Fatalf("the mediator's daemon after the wipe: %v", err)
	}
	if err := mediator.cmd.Wait(); err != nil {
		t.Fatalf("the mediator's daemon after the wipe: %v", err)
	}
	mediator.cmd = nil
}
