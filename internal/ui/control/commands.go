package control

import (
	"strings"

	"github.com/backchannel/backchannel/internal/client"
)

// Command is one operation: its request, the command line that asks it and
// whether the web interface may.
type Command struct {
	// New returns an empty request of the operation's type.
	New func() Request
	// CLI is the command line that asks the operation ("contact add");
	// empty for one that no command asks by itself (wait and read serve
	// flags of other commands: --wait, --save).
	CLI string
	// Args is what follows CLI ("NAME CARD-FILE"), and Summary what the
	// command does, for usage and help.
	Args, Summary string
	// UI: the web interface may ask it. Not backup (it writes a file
	// wherever its request says) nor wait (the page has live updates).
	UI bool
	// Reads: it changes nothing (the web interface does not count it as
	// the user's activity).
	Reads bool
	// Role is the role an officer needs to ask it; empty: reader for
	// what Reads, drafter for the rest.
	Role client.Role
}

// role is the role an officer needs to ask the command.
func (c Command) role() client.Role {
	switch {
	case c.Role != "":
		return c.Role
	case c.Reads:
		return client.RoleReader
	}
	return client.RoleDrafter
}

// Op names the command's operation.
func (c Command) Op() string { return c.New().Op() }

// Commands is every operation of the protocol, in the order the usage
// lists them.
var Commands = []Command{
	{New: func() Request { return &CardRequest{} }, CLI: "card", Args: "[--classical]", Summary: "print your contact card (--classical: in the format the previous release reads)", UI: true, Reads: true},
	{New: func() Request { return &ContactAddRequest{} }, CLI: "contact add", Args: "NAME CARD-FILE", Summary: "add a contact from their card (- reads it from standard input)", UI: true},
	{New: func() Request { return &ContactListRequest{} }, CLI: "contact list", Summary: "list contacts with their safety numbers", UI: true, Reads: true},
	{New: func() Request { return &ContactVerifyRequest{} }, CLI: "contact verify", Args: "NAME", Summary: "mark a contact's safety number as compared", UI: true},
	{New: func() Request { return &ContactRenameRequest{} }, CLI: "contact rename", Args: "NAME NEW-NAME", Summary: "call a contact by another name (yours alone: they are not told)", UI: true},
	{New: func() Request { return &ContactBudgetRequest{} }, CLI: "contact budget", Args: "NAME DURATION", Summary: "how long messages to a contact may take before they fail (0: the default, 72h)", UI: true},
	{New: func() Request { return &ContactExpireRequest{} }, CLI: "contact expire", Args: "NAME DURATION", Summary: "make a conversation's messages disappear (0: never)", UI: true},
	{New: func() Request { return &SendRequest{} }, CLI: "send", Args: "[--within DURATION] NAME TEXT... | --file PATH NAME", Summary: "send a text or a file", UI: true},
	{New: func() Request { return &InboxRequest{} }, CLI: "inbox", Args: "[--save DIR]", Summary: "list received messages (--save DIR writes their files there)", UI: true, Reads: true},
	{New: func() Request { return &ReadRequest{} }, Summary: "a received message's content", UI: true, Reads: true},
	{New: func() Request { return &StatusRequest{} }, CLI: "status", Summary: "sent messages and their status, and the client's counters", UI: true, Reads: true},
	{New: func() Request { return &RetryRequest{} }, CLI: "retry", Args: "ID", Summary: "send a message on its way again at once (a failed text: queue it again)", UI: true},
	{New: func() Request { return &CancelRequest{} }, CLI: "cancel", Args: "ID", Summary: "stop sending a message on its way (it is marked failed)", UI: true},
	{New: func() Request { return &BackupRequest{} }, CLI: "backup", Args: "FILE", Summary: "write an encrypted backup of identity, contacts and settings", Role: client.RoleAdministrator},
	{New: func() Request { return &WaitRequest{} }, Summary: "wait until a condition holds (the --wait flags)", Reads: true},
	{New: func() Request { return &WipeRequest{} }, CLI: "wipe", Args: "--yes", Summary: "make the local state unreadable at once", UI: true, Role: client.RoleAdministrator},
	{New: func() Request { return &IntroduceRequest{} }, CLI: "introduce", Args: "--label-for-a LABEL --label-for-b LABEL [--note TEXT] A B", Summary: "introduce two contacts to each other, under labels you choose", UI: true},
	{New: func() Request { return &IntroListRequest{} }, CLI: "intro list", Summary: "introductions made to you and by you", UI: true, Reads: true},
	{New: func() Request { return &IntroAnswerRequest{} }, CLI: "intro accept|decline", Args: "ID", Summary: "answer an introduction made to you", UI: true},
	{New: func() Request { return &ConveyRequest{} }, CLI: "convey send", Args: "[--to LABEL] [--receipt none|deniable|signed] INTERMEDIARY TEXT", Summary: "write through an intermediary", UI: true},
	{New: func() Request { return &ConveyReplyRequest{} }, CLI: "convey reply", Args: "[--receipt none|deniable|signed] ID TEXT", Summary: "answer a conveyed message through its intermediary", UI: true},
	{New: func() Request { return &ConveyListRequest{} }, CLI: "convey list", Summary: "what you gave intermediaries, and their receipts", UI: true, Reads: true},
	{New: func() Request { return &ReceiptRequest{} }, CLI: "convey receipt", Args: "ID > FILE", Summary: "write the proof of conveyance of a message", UI: true, Reads: true},
	{New: func() Request { return &DeskListRequest{} }, CLI: "desk list", Summary: "the messages given to you to convey", UI: true, Reads: true},
	{New: func() Request { return &DeskPassRequest{} }, CLI: "desk pass", Args: "[--to CONTACT] [--as LABEL] [--note TEXT] ID", Summary: "pass a message on", UI: true},
	{New: func() Request { return &DeskRefuseRequest{} }, CLI: "desk refuse", Args: "[--note TEXT] ID", Summary: "refuse to pass a message on", UI: true},
	{New: func() Request { return &CheckAskRequest{} }, CLI: "check ask", Args: "--answer yes|no [--within DURATION] NAME QUESTION", Summary: "ask a mutual interest check: both learn \"both said yes\" only if both did", UI: true},
	{New: func() Request { return &CheckAnswerRequest{} }, CLI: "check answer", Args: "ID yes|no", Summary: "answer a check asked of you", UI: true},
	{New: func() Request { return &CheckListRequest{} }, CLI: "check list", Summary: "mutual interest checks and their results", UI: true, Reads: true},
	{New: func() Request { return &OfficerLoginRequest{} }, CLI: "officer login", Summary: "prove your passphrase to the daemon; prints the line that lets this terminal act as you (use: eval \"$(backchannel officer login)\")"},
	{New: func() Request { return &OfficerLogoutRequest{} }, CLI: "officer logout", Summary: "forget this terminal's login"},
	{New: func() Request { return &OfficerListRequest{} }, CLI: "officer list", Summary: "the identity's officers and their roles", Reads: true},
	{New: func() Request { return &OfficerAddRequest{} }, CLI: "officer add", Args: "--roles ROLE,... NAME", Summary: "add an officer, who types their own passphrase (roles: reader, drafter, releaser, administrator)", Role: client.RoleAdministrator},
	{New: func() Request { return &OfficerRemoveRequest{} }, CLI: "officer remove", Args: "NAME", Summary: "remove an officer: their passphrase opens nothing of the state from now on", Role: client.RoleAdministrator},
	{New: func() Request { return &OfficerPassphraseRequest{} }, CLI: "officer passphrase", Summary: "change your own passphrase (asked twice)", Role: client.RoleReader},
	{New: func() Request { return &OfficerRoleRequest{} }, CLI: "officer role", Args: "NAME ROLE,...", Summary: "give an officer these roles", Role: client.RoleAdministrator},
	{New: func() Request { return &DraftsRequest{} }, CLI: "drafts", Summary: "what waits for approval under dual control, and what was decided", UI: true, Reads: true},
	{New: func() Request { return &DraftEditRequest{} }, CLI: "draft edit", Args: "ID TEXT", Summary: "give your drafted text message a new text (any approval so far no longer holds)", UI: true},
	{New: func() Request { return &ApproveRequest{} }, CLI: "approve", Args: "[--yes] ID", Summary: "approve another officer's draft, as shown to you, and do it (releaser; administrator for what needs two)", UI: true, Role: client.RoleReader},
	{New: func() Request { return &RejectRequest{} }, CLI: "reject", Args: "[--note TEXT] ID", Summary: "reject a draft: it never leaves (its drafter may withdraw it)", UI: true, Role: client.RoleReader},
	{New: func() Request { return &DualControlRequest{} }, CLI: "dual-control", Args: "on|off|show [--contact NAME]", Summary: "a second officer approves what leaves: for the whole identity or one contact (off needs two administrators)", UI: true, Role: client.RoleReader},
	{New: func() Request { return &AuditShowRequest{} }, CLI: "audit show", Summary: "the audit trail: who did what, on what, when (never a message's text)", UI: true, Reads: true},
	{New: func() Request { return &AuditVerifyRequest{} }, CLI: "audit verify", Summary: "check that no entry of the audit trail was removed, altered, reordered or cut off", UI: true, Reads: true},
	{New: func() Request { return &AuditCutRequest{} }, CLI: "audit cut", Args: "--before DATE", Summary: "remove the entries older than DATE (2006-01-02) from the trail's start, recording the cut (needs two administrators once there are two)", Role: client.RoleAdministrator},
}

// Lookup finds the command of an operation.
func Lookup(op string) (Command, bool) {
	for _, c := range Commands {
		if c.Op() == op {
			return c, true
		}
	}
	return Command{}, false
}

// ByCLI finds the command a command line asks ("contact add"; "intro
// accept" is the command "intro accept|decline").
func ByCLI(cli string) (Command, bool) {
	for _, c := range Commands {
		if c.CLI == cli {
			return c, true
		}
		head, alternatives, ok := strings.Cut(c.CLI, " ")
		if !ok || !strings.Contains(alternatives, "|") {
			continue
		}
		for _, a := range strings.Split(alternatives, "|") {
			if head+" "+a == cli {
				return c, true
			}
		}
	}
	return Command{}, false
}
