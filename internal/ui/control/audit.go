package control

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/client/audit"
)

// Every operation that acts (and reading a message or the inbox's texts,
// and exporting a receipt) is recorded in the identity's audit trail once it has succeeded:
// the operation's name, and what it was on — a message, desk entry,
// introduction or check ID, a contact's name — never a text, a note, a
// label given to a contact, or an answer. What only shows the state
// (lists, status, the trail itself) and waiting are not recorded; nor is a
// wipe, which removes the trail with everything else.

// audited says what the trail records of request r, answered with resp.
func audited(r Request, resp any) (action audit.Action, object string, ok bool) {
	action = audit.Action(r.Op())
	made := ""
	if id, isID := resp.(IDResponse); isID {
		made = id.ID
	}
	switch r := r.(type) {
	case *ContactAddRequest:
		return action, r.Name, true
	case *ContactVerifyRequest:
		return action, r.Name, true
	case *ContactRenameRequest:
		return action, r.Name + " → " + r.NewName, true
	case *ContactBudgetRequest:
		return action, fmt.Sprintf("%s: %v", r.Name, r.Budget), true
	case *ContactExpireRequest:
		return action, fmt.Sprintf("%s: %v", r.Name, r.After), true
	case *SendRequest:
		return action, objectOf("message "+made, "to "+r.To), true
	case *ReadRequest:
		return action, "message " + r.ID, true
	case *RetryRequest:
		return action, objectOf("message "+r.ID, "now "+made), true
	case *CancelRequest:
		return action, "message " + r.ID, true
	case *BackupRequest:
		return action, "", true
	case *IntroduceRequest:
		return action, objectOf("introduction "+made, r.A+" and "+r.B), true
	case *IntroAnswerRequest:
		return action, "introduction " + r.ID, true
	case *ConveyRequest:
		return action, objectOf("message "+made, "via "+r.Via), true
	case *ConveyReplyRequest:
		return action, objectOf("message "+made, "in reply to "+r.ID), true
	case *ReceiptRequest:
		return action, "message " + r.ID, true
	case *DeskPassRequest:
		return action, objectOf("desk entry "+r.ID, "to "+r.To), true
	case *DeskRefuseRequest:
		return action, "desk entry " + r.ID, true
	case *CheckAskRequest:
		return action, objectOf("check "+made, "with "+r.With), true
	case *CheckAnswerRequest:
		return action, "check " + r.ID, true
	}
	return "", "", false
}

// inboxSeen records in the trail that an officer was shown the inbox's
// texts: once for each new newest message an officer is shown (the page
// asks for the inbox at every change; a record each time would bury the
// trail), naming the newest, so that the entry says "everything up to
// here". It is kept in memory: after a restart, the first listing is
// recorded again.
type inboxSeen struct {
	mu     sync.Mutex
	newest map[string]string // officer → the newest message ID recorded
}

func (in *inboxSeen) record(c *client.Client, officer string, msgs []client.MessageInfo) error {
	newest, at := "", time.Time{}
	for _, m := range msgs {
		if m.Incoming && !m.Time.Before(at) {
			newest, at = m.ID, m.Time
		}
	}
	if newest == "" {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.newest[officer] == newest {
		return nil
	}
	if err := c.Record(officer, "read", fmt.Sprintf("the inbox, up to message %s", newest)); err != nil {
		return err
	}
	if in.newest == nil {
		in.newest = map[string]string{}
	}
	in.newest[officer] = newest
	return nil
}

// objectOf joins the parts of an object that have something after their
// first word.
func objectOf(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if strings.Contains(strings.TrimSpace(p), " ") {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ", ")
}

type (
	// AuditShowRequest lists the audit trail's entries, oldest first.
	AuditShowRequest  struct{}
	AuditShowResponse struct {
		Entries []audit.Entry `json:"entries"`
	}
	// AuditVerifyRequest walks the audit trail's chain; an error says
	// where it does not hold.
	AuditVerifyRequest  struct{}
	AuditVerifyResponse struct {
		Checked int `json:"checked"`
	}
	// AuditCutRequest removes the entries older than Before from the
	// trail's start, recording the cut in the chain: the administrators'
	// retention.
	AuditCutRequest struct {
		Before time.Time `json:"before"`
	}
	AuditCutResponse struct {
		Removed int `json:"removed"`
	}
)

func (AuditShowRequest) Op() string     { return "audit-show" }
func (AuditVerifyRequest) Op() string   { return "audit-verify" }
func (AuditCutRequest) Op() string      { return "audit-cut" }
func (AuditShowRequest) Check() error   { return nil }
func (AuditVerifyRequest) Check() error { return nil }
func (r AuditCutRequest) Check() error {
	return need(!r.Before.IsZero(), "a time before which entries go")
}

// handleAudit answers the audit trail's requests.
func (s *Server) handleAudit(by string, r Request) (any, bool, error) {
	switch r := r.(type) {
	case *AuditCutRequest:
		n, err := s.Client.AuditTrail().Cut(by, r.Before)
		return AuditCutResponse{Removed: n}, true, err
	case *AuditShowRequest:
		entries, err := s.Client.AuditTrail().Entries()
		return AuditShowResponse{Entries: entries}, true, err
	case *AuditVerifyRequest:
		n, err := s.Client.AuditTrail().Verify()
		return AuditVerifyResponse{Checked: n}, true, err
	}
	return nil, false, nil
}
