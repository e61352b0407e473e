package control

import (
	"errors"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/features/convey"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/features/intro"
)

// The requests and responses of the operations, in the order of Commands.
// A request's JSON fields are its arguments on the socket.

// File is a file to send, or one received.
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Empty is the response of an operation that answers nothing but success.
type Empty struct{}

// IDResponse names what an operation made: a message, an introduction, a
// check.
type IDResponse struct {
	ID string `json:"id"`
}

// need returns an error saying what a request lacks, unless ok.
func need(ok bool, what string) error {
	if ok {
		return nil
	}
	return errors.New(what)
}

type (
	// CardRequest asks for the user's own card; CardResponse has it as
	// text. Classical asks for a card of version 1, which the previous
	// release reads (its holder then writes in the classical envelope).
	CardRequest struct {
		Classical bool `json:"classical,omitempty"`
	}
	CardResponse struct {
		Card string `json:"card"`
	}

	// ContactAddRequest adds the owner of Card (as text) as Name.
	ContactAddRequest struct {
		Name string `json:"name"`
		Card string `json:"card"`
	}
	// ContactListRequest lists the contacts.
	ContactListRequest struct{}
	// ContactVerifyRequest marks Name's safety number compared.
	ContactVerifyRequest struct {
		Name string `json:"name"`
	}
	// ContactBudgetRequest sets how long messages to Name may take before
	// they fail (0: the client's budget).
	ContactBudgetRequest struct {
		Name   string        `json:"name"`
		Budget time.Duration `json:"budget"`
	}
	// CancelRequest stops sending the message ID (it fails, cancelled).
	CancelRequest struct {
		ID string `json:"id"`
	}
	// RetryRequest sends the message ID again at once; a failed text is
	// queued again, under the returned ID.
	RetryRequest struct {
		ID string `json:"id"`
	}
	// ContactRenameRequest gives the contact Name the name NewName.
	ContactRenameRequest struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
	}
	// ContactExpireRequest makes the messages with Name disappear After
	// they are delivered or received (0: never).
	ContactExpireRequest struct {
		Name  string        `json:"name"`
		After time.Duration `json:"after"`
	}
	// ContactsResponse lists the contacts after a contact operation.
	ContactsResponse struct {
		Contacts []client.ContactInfo `json:"contacts"`
	}

	// SendRequest sends a text or a file to the contact To.
	SendRequest struct {
		To   string `json:"to"`
		Text string `json:"text,omitempty"`
		File *File  `json:"file,omitempty"`
		// Within, if set, is the message's time budget.
		Within time.Duration `json:"within,omitempty"`
	}

	// InboxRequest lists the received messages.
	InboxRequest     struct{}
	MessagesResponse struct {
		Messages []client.MessageInfo `json:"messages"`
	}
	// ReadRequest gets a received message's content: a text, or a file.
	ReadRequest struct {
		ID string `json:"id"`
	}
	ReadResponse struct {
		Text string `json:"text,omitempty"`
		File *File  `json:"file,omitempty"`
	}

	// StatusRequest asks for the sent messages, the counters and the
	// network document's description.
	StatusRequest  struct{}
	StatusResponse struct {
		Messages []client.MessageInfo `json:"messages"`
		Stats    *client.Stats        `json:"stats"`
		Network  *client.NetworkInfo  `json:"network,omitempty"`
	}

	// BackupRequest writes an encrypted backup to Path (absolute), under
	// Passphrase.
	BackupRequest struct {
		Path       string `json:"path"`
		Passphrase string `json:"passphrase"`
	}

	// WaitRequest waits until Until holds (Count times, for the conditions
	// that count), for at most Timeout; it answers the status.
	WaitRequest struct {
		Until   string        `json:"until"`
		Count   int           `json:"count,omitempty"`
		Timeout time.Duration `json:"timeout"`
	}

	// WipeRequest makes the state unreadable at once; the daemon stops.
	WipeRequest struct{}

	// IntroduceRequest introduces the contacts A and B: A is shown B's
	// card as LabelForA, B is shown A's as LabelForB, both with Note.
	IntroduceRequest struct {
		A         string `json:"a"`
		B         string `json:"b"`
		LabelForA string `json:"label_for_a"`
		LabelForB string `json:"label_for_b"`
		Note      string `json:"note,omitempty"`
	}
	// IntroListRequest lists introductions, made and received.
	IntroListRequest      struct{}
	IntroductionsResponse struct {
		Introductions []intro.Info `json:"introductions"`
	}
	// IntroAnswerRequest accepts or declines an introduction.
	IntroAnswerRequest struct {
		ID     string `json:"id"`
		Accept bool   `json:"accept"`
	}

	// ConveyRequest gives Text to the intermediary Via, to pass on to the
	// party it knows as To, with the Receipt asked for (none, deniable or
	// signed).
	ConveyRequest struct {
		Via     string `json:"via"`
		To      string `json:"to"`
		Text    string `json:"text"`
		Receipt string `json:"receipt,omitempty"`
	}
	// ConveyReplyRequest answers the conveyed message ID, through the
	// intermediary that conveyed it.
	ConveyReplyRequest struct {
		ID      string `json:"id"`
		Text    string `json:"text"`
		Receipt string `json:"receipt,omitempty"`
	}
	// ConveyListRequest lists what the user gave intermediaries.
	ConveyListRequest   struct{}
	ConveyancesResponse struct {
		Conveyances []convey.Info `json:"conveyances"`
	}
	// ReceiptRequest gets the proof of conveyance of a conveyed message.
	ReceiptRequest struct {
		ID string `json:"id"`
	}
	ProofResponse struct {
		Proof *convey.Proof `json:"proof"`
	}

	// DeskListRequest lists the messages given to the user to convey.
	DeskListRequest struct{}
	DeskResponse    struct {
		Desk []convey.DeskEntry `json:"desk"`
	}
	// DeskPassRequest passes a desk entry on to the contact To (empty:
	// back to the sender of the message it answers), naming its sender
	// As, with the intermediary's Note.
	DeskPassRequest struct {
		ID   string `json:"id"`
		To   string `json:"to,omitempty"`
		As   string `json:"as,omitempty"`
		Note string `json:"note,omitempty"`
	}
	// DeskRefuseRequest refuses a desk entry, telling its sender Note.
	DeskRefuseRequest struct {
		ID   string `json:"id"`
		Note string `json:"note,omitempty"`
	}

	// CheckAskRequest asks the contact With the Question, with the user's
	// own Answer (yes or no), for an answer Within.
	CheckAskRequest struct {
		With     string        `json:"with"`
		Question string        `json:"question"`
		Answer   string        `json:"answer"`
		Within   time.Duration `json:"within"`
	}
	// CheckAnswerRequest answers a check asked of the user.
	CheckAnswerRequest struct {
		ID     string `json:"id"`
		Answer string `json:"answer"`
	}
	// CheckListRequest lists the mutual interest checks.
	CheckListRequest struct{}
	ChecksResponse   struct {
		Checks []interest.Info `json:"checks"`
	}
)

func (CardRequest) Op() string          { return "card" }
func (ContactAddRequest) Op() string    { return "contact-add" }
func (ContactListRequest) Op() string   { return "contact-list" }
func (ContactVerifyRequest) Op() string { return "contact-verify" }
func (ContactExpireRequest) Op() string { return "contact-expire" }
func (ContactRenameRequest) Op() string { return "contact-rename" }
func (ContactBudgetRequest) Op() string { return "contact-budget" }
func (CancelRequest) Op() string        { return "cancel" }
func (RetryRequest) Op() string         { return "retry" }
func (SendRequest) Op() string          { return "send" }
func (InboxRequest) Op() string         { return "inbox" }
func (ReadRequest) Op() string          { return "read" }
func (StatusRequest) Op() string        { return "status" }
func (BackupRequest) Op() string        { return "backup" }
func (WaitRequest) Op() string          { return "wait" }
func (WipeRequest) Op() string          { return "wipe" }
func (IntroduceRequest) Op() string     { return "introduce" }
func (IntroListRequest) Op() string     { return "intro-list" }
func (IntroAnswerRequest) Op() string   { return "intro-answer" }
func (ConveyRequest) Op() string        { return "convey" }
func (ConveyReplyRequest) Op() string   { return "convey-reply" }
func (ConveyListRequest) Op() string    { return "convey-list" }
func (ReceiptRequest) Op() string       { return "receipt" }
func (DeskListRequest) Op() string      { return "desk-list" }
func (DeskPassRequest) Op() string      { return "desk-pass" }
func (DeskRefuseRequest) Op() string    { return "desk-refuse" }
func (CheckAskRequest) Op() string      { return "check-ask" }
func (CheckAnswerRequest) Op() string   { return "check-answer" }
func (CheckListRequest) Op() string     { return "check-list" }

func (CardRequest) Check() error        { return nil }
func (ContactListRequest) Check() error { return nil }
func (InboxRequest) Check() error       { return nil }
func (StatusRequest) Check() error      { return nil }
func (WipeRequest) Check() error        { return nil }
func (IntroListRequest) Check() error   { return nil }
func (ConveyListRequest) Check() error  { return nil }
func (DeskListRequest) Check() error    { return nil }
func (CheckListRequest) Check() error   { return nil }
func (r ContactAddRequest) Check() error {
	return need(r.Name != "" && r.Card != "", "a name and a card")
}
func (r ContactVerifyRequest) Check() error { return need(r.Name != "", "a name") }
func (r CancelRequest) Check() error        { return need(r.ID != "", "a message ID") }
func (r ContactBudgetRequest) Check() error {
	return need(r.Name != "" && r.Budget >= 0, "a name and a duration (0: the default)")
}
func (r RetryRequest) Check() error { return need(r.ID != "", "a message ID") }
func (r ContactRenameRequest) Check() error {
	return need(r.Name != "" && r.NewName != "", "a name and a new name")
}
func (r ContactExpireRequest) Check() error {
	return need(r.Name != "" && r.After >= 0, "a name and a duration (0: off)")
}
func (r SendRequest) Check() error {
	return need(r.To != "" && (r.Text != "") != (r.File != nil) && r.Within >= 0, "a contact, either a text or a file, and no negative time budget")
}
func (r ReadRequest) Check() error { return need(r.ID != "", "a message ID") }
func (r BackupRequest) Check() error {
	return need(r.Path != "" && r.Passphrase != "", "a path and a passphrase")
}
func (r WaitRequest) Check() error {
	return need(waitConditions[r.Until] && r.Count >= 0 && r.Timeout > 0 && r.Timeout <= MaxWait,
		"a known condition and a timeout of at most an hour")
}
func (r IntroduceRequest) Check() error {
	return need(r.A != "" && r.B != "" && r.LabelForA != "" && r.LabelForB != "", "two contacts and a label for each")
}
func (r IntroAnswerRequest) Check() error { return need(r.ID != "", "an introduction ID") }
func (r ConveyRequest) Check() error {
	return need(r.Via != "" && r.Text != "" && validReceipt(r.Receipt), "an intermediary, a text and a receipt kind (none, deniable, signed)")
}
func (r ConveyReplyRequest) Check() error {
	return need(r.ID != "" && r.Text != "" && validReceipt(r.Receipt), "a conveyed message's ID, a text and a receipt kind")
}
func (r ReceiptRequest) Check() error    { return need(r.ID != "", "a conveyance ID") }
func (r DeskPassRequest) Check() error   { return need(r.ID != "", "a desk entry ID") }
func (r DeskRefuseRequest) Check() error { return need(r.ID != "", "a desk entry ID") }
func (r CheckAskRequest) Check() error {
	return need(r.With != "" && r.Question != "" && validAnswer(r.Answer) && r.Within > 0 && r.Within <= 30*24*time.Hour,
		"a contact, a question, your answer (yes or no) and a time to answer within (at most 30 days)")
}
func (r CheckAnswerRequest) Check() error {
	return need(r.ID != "" && validAnswer(r.Answer), "a check ID and an answer (yes or no)")
}

func validReceipt(s string) bool { return s == "" || s == "none" || s == "deniable" || s == "signed" }
func validAnswer(s string) bool  { return s == "yes" || s == "no" }

// MaxWait bounds a wait request.
const MaxWait = time.Hour

// What a wait request can wait for, with Count.
var waitConditions = map[string]bool{
	"settled": true, "received": true, "introductions": true, "introductions-done": true,
	"desk": true, "conveyed": true, "checks": true, "checks-done": true,
	"inbox-at-most": true, "outbox-at-most": true, "loops-returned": true,
}
