package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestWebConversationOrder: bob's page shows alice's messages in the order
// she sent them, whatever order the network delivers them in, and a
// message that arrived out of order shows when it was sent and when it
// arrived. The network's only first-layer mix drops 30 % of the packets it
// unwraps (the test build's fault switch), so that a message whose first
// transmission is lost arrives, retransmitted, after messages sent after
// it. Alice sends bursts of eight until one arrived out of order (about
// half of them do; 16 bursts leave no room for chance).
func TestWebConversationOrder(t *testing.T) {
	chromium := chromiumPath(t)
	nw := startNetworkWith(t, 1, nil, map[string][]string{
		"testnet": clientParameters,
		"mix-1-a": {"BACKCHANNEL_FAULT_DROP=0.3", "BACKCHANNEL_FAULT_SEED=7"},
	})
	// A fragment and its ack each cross the lossy mix: about one attempt in
	// two gets through, and messages are sent again until they do.
	alice := nw.newUIUser(t, chromium, "alice", "provider-a")
	bob := nw.newUIUser(t, chromium, "bob", "provider-b")
	alice.unlock()
	bob.unlock()
	befriendUI(alice, bob)
	// The first message sets the session up; each side tells the other
	// what its software reads in a message of its own.
	alice.send("bob", "hello")
	bob.send("alice", "hello to you")
	alice.waitMessage("bob", "hello to you")
	bob.waitMessage("alice", "hello")
	waitSendingTimes(t, alice, bob)

	for burst := range 16 {
		texts := make([]string, 8)
		alice.open("bob")
		for i := range texts {
			texts[i] = fmt.Sprintf("burst %d, message %d", burst, i+1)
			alice.do("sending "+texts[i],
				chromedp.SendKeys(chromedp.CSS("#compose"), texts[i]+kb.Enter),
				waitJS(`document.querySelector("#compose").value === ""`))
		}
		bob.open("alice")
		bob.do("receiving the burst", waitJS(fmt.Sprintf(
			`[...document.querySelectorAll("li.msg.in .text")].filter(m => m.textContent.startsWith("burst %d,")).length === %d`, burst, len(texts))))
		type shown struct {
			Text, Arrived, Title string
		}
		got := get(bob, "reading the conversation", chromedp.Evaluate[[]shown](fmt.Sprintf(
			`[...document.querySelectorAll("li.msg.in")].filter(m => m.querySelector(".text") && m.querySelector(".text").textContent.startsWith("burst %d,"))
			  .map(m => ({Text: m.querySelector(".text").textContent, Arrived: m.dataset.arrived, Title: m.querySelector("time").title}))`, burst)))
		var shownTexts []string
		for _, s := range got {
			shownTexts = append(shownTexts, s.Text)
			if s.Title == "" {
				t.Fatalf("%q does not say when it was sent and when it arrived", s.Text)
			}
		}
		if !slices.Equal(shownTexts, texts) {
			t.Fatalf("bob's page shows the burst in the order %q, not alice's %q", shownTexts, texts)
		}
		late := ""
		for i := range got {
			for j := i + 1; j < len(got); j++ {
				a, _ := time.Parse(time.RFC3339Nano, got[i].Arrived)
				b, _ := time.Parse(time.RFC3339Nano, got[j].Arrived)
				if a.After(b) {
					late = fmt.Sprintf("%q arrived %v after %q", got[i].Text, a.Sub(b).Round(time.Millisecond), got[j].Text)
				}
			}
		}
		if late != "" {
			t.Logf("burst %d: %s, and the page shows alice's order", burst, late)
			renameInPage(bob, "alice", "A.")
			return
		}
		t.Logf("burst %d arrived in order; another", burst)
	}
	t.Fatal("no message arrived out of order in 16 bursts: the lossy mix does not drop")
}

// renameInPage renames a contact from its conversation: the conversation,
// messages and all, goes on under the new name.
func renameInPage(u *uiUser, from, to string) {
	u.open(from)
	u.do("renaming "+from,
		click(chromedp.CSS(".rename-box summary")),
		chromedp.SetValue(chromedp.CSS("#rename-to"), to),
		click(chromedp.CSS("#rename")),
		chromedp.WaitVisible(chromedp.CSS(`#sidebar a[data-contact="`+to+`"]`)),
		waitJS(fmt.Sprintf(`location.hash === "#/c/" + encodeURIComponent(%q) && document.querySelectorAll("li.msg.in").length > 0`, to)),
		waitJS(fmt.Sprintf(`document.querySelector('#sidebar a[data-contact=%q]') === null`, from)),
	)
}

// waitSendingTimes returns once from's messages reach to carrying their
// sending time: from has to's word that its software reads them, which the
// lossy mix can hold back past to's first text. from writes until one of
// its messages arrives showing it (the word, once had, stays).
func waitSendingTimes(t *testing.T, from, to *uiUser) {
	t.Helper()
	for i := 1; i <= 20; i++ {
		text := fmt.Sprintf("do you see when I sent this? (%d)", i)
		from.send(to.name, text)
		to.waitMessage(from.name, text)
		title := get(to, "reading "+text, chromedp.Evaluate[string](fmt.Sprintf(
			`[...document.querySelectorAll("li.msg.in")].find(m => m.querySelector(".text").textContent === %q).querySelector("time").title`, text)))
		if title != "" {
			t.Logf("%s's messages carry their sending time from message %d on", from.name, i)
			return
		}
	}
	t.Fatalf("none of 20 messages from %s reached %s with its sending time", from.name, to.name)
}
