package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/backchannel/backchannel/internal/client"
)

// Dual control at the socket and the web interface: an operation that
// dual control covers, or one that needs two administrators, is kept as a
// draft (client/drafts.go) instead of being done; approving the draft does
// it, as its drafter, recording both officers. A drafted request's
// response is DraftedResponse, and Response.Drafted says so.

// releasedOps are the operations dual control holds for a releaser: what
// sends something to someone. concerns names the contacts each is for
// (none: it is held only when dual control is on for the whole identity).
func concerns(r Request) (contacts []string, covered bool) {
	switch r := r.(type) {
	case *SendRequest:
		return []string{r.To}, true
	case *ConveyRequest:
		return []string{r.Via}, true
	case *ConveyReplyRequest:
		return nil, true
	case *DeskPassRequest:
		if r.To != "" {
			return []string{r.To}, true
		}
		return nil, true
	case *IntroduceRequest:
		return []string{r.A, r.B}, true
	case *CheckAskRequest:
		return []string{r.With}, true
	case *CheckAnswerRequest:
		return nil, true
	}
	return nil, false
}

// needsTwoAdministrators reports whether r could take the organisation's
// control away: giving the releaser or administrator role, switching dual
// control off, wiping the state, cutting the audit trail.
func needsTwoAdministrators(r Request) bool {
	grants := func(roles []client.Role) bool {
		return slices.Contains(roles, client.RoleReleaser) || slices.Contains(roles, client.RoleAdministrator)
	}
	switch r := r.(type) {
	case *OfficerAddRequest:
		return grants(r.Roles)
	case *OfficerRoleRequest:
		return grants(r.Roles)
	case *DualControlRequest:
		return !r.On && !r.Show
	case *WipeRequest, *AuditCutRequest:
		return true
	}
	return false
}

// draftIfHeld keeps r as a draft if dual control or the two-administrator
// rule holds it; ok reports whether it did.
func (s *Server) draftIfHeld(by string, r Request) (resp any, ok bool, err error) {
	needs := client.Role("")
	contacts, covered := concerns(r)
	if covered {
		held, err := s.Client.DualControlFor(contacts)
		if err != nil {
			return nil, true, err
		}
		if held {
			needs = client.RoleReleaser
		}
	} else if needsTwoAdministrators(r) && s.Client.NeedsTwoAdministrators() {
		needs = client.RoleAdministrator
	}
	if needs == "" {
		return nil, false, nil
	}
	payload, err := Marshal(r)
	if err != nil {
		return nil, true, err
	}
	about := r.Op()
	if _, object, ok := audited(r, nil); ok && object != "" {
		about += ": " + object
	}
	id, err := s.Client.NewDraft(by, r.Op(), about, contacts, payload, needs)
	if err != nil {
		return nil, true, err
	}
	return DraftedResponse{Draft: id, Needs: needs}, true, nil
}

type (
	// DraftedResponse answers a request that was kept as a draft.
	DraftedResponse struct {
		Draft string      `json:"draft"`
		Needs client.Role `json:"needs"`
	}
	// DraftsRequest lists the drafts; a draft's Request is what it would
	// do, decoded (an officer's passphrase left out).
	DraftsRequest  struct{}
	DraftsResponse struct {
		Drafts []DraftInfo `json:"drafts"`
	}
	// DraftEditRequest gives a drafted text message a new text.
	DraftEditRequest struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	// ApproveRequest approves a draft whose content hashes to MAC (as
	// the approver was shown it), and does what it asks.
	ApproveRequest struct {
		ID  string `json:"id"`
		MAC string `json:"mac"`
	}
	ApproveResponse struct {
		Op     string          `json:"op"`
		Result json.RawMessage `json:"result,omitempty"`
	}
	// RejectRequest rejects a draft: it never leaves.
	RejectRequest struct {
		ID   string `json:"id"`
		Note string `json:"note,omitempty"`
	}
	// DualControlRequest switches dual control on or off, for the whole
	// identity or (Contact) one contact; Show only shows the setting.
	DualControlRequest struct {
		On      bool   `json:"on"`
		Contact string `json:"contact,omitempty"`
		Show    bool   `json:"show,omitempty"`
	}
	DualControlResponse struct {
		Setting client.DualControl `json:"setting"`
	}
)

// DraftInfo is a draft as the socket shows it.
type DraftInfo struct {
	client.Draft
	Request json.RawMessage `json:"request,omitempty"`
}

func (DraftsRequest) Op() string      { return "drafts" }
func (DraftEditRequest) Op() string   { return "draft-edit" }
func (ApproveRequest) Op() string     { return "approve" }
func (RejectRequest) Op() string      { return "reject" }
func (DualControlRequest) Op() string { return "dual-control" }

func (DraftsRequest) Check() error { return nil }
func (r DraftEditRequest) Check() error {
	return need(r.ID != "" && r.Text != "", "a draft ID and a text")
}
func (r ApproveRequest) Check() error {
	return need(r.ID != "" && r.MAC != "", "a draft ID and the content hash you were shown")
}
func (r RejectRequest) Check() error    { return need(r.ID != "", "a draft ID") }
func (DualControlRequest) Check() error { return nil }

// handleDrafts answers the drafts' and dual control's requests.
func (s *Server) handleDrafts(ctx context.Context, by string, r Request) (any, bool, error) {
	c := s.Client
	switch r := r.(type) {
	case *DraftsRequest:
		resp, err := s.drafts()
		return resp, true, err
	case *DraftEditRequest:
		return nil, true, s.editDraft(by, r)
	case *ApproveRequest:
		resp, err := s.approve(ctx, by, r)
		return resp, true, err
	case *RejectRequest:
		return struct{}{}, true, c.RejectDraft(by, r.ID, r.Note)
	case *DualControlRequest:
		if !r.Show {
			if err := c.SetDualControl(by, r.On, r.Contact); err != nil {
				return nil, true, err
			}
		}
		setting, err := c.DualControlSetting()
		return DualControlResponse{Setting: setting}, true, err
	}
	return nil, false, nil
}

// drafts lists the drafts with what each asks, decoded.
func (s *Server) drafts() (DraftsResponse, error) {
	drafts, err := s.Client.Drafts()
	if err != nil {
		return DraftsResponse{}, err
	}
	out := DraftsResponse{Drafts: []DraftInfo{}}
	for _, d := range drafts {
		info := DraftInfo{Draft: d}
		if d.Payload != nil {
			req, err := ParseRequest(d.Payload)
			if err != nil {
				return out, fmt.Errorf("control: draft %s: %w", d.ID, err)
			}
			if add, ok := req.(*OfficerAddRequest); ok {
				add.Passphrase = "" // typed by the new officer: not shown
			}
			if info.Request, err = json.Marshal(req); err != nil {
				return out, err
			}
		}
		info.Payload = nil
		out.Drafts = append(out.Drafts, info)
	}
	return out, nil
}

// editDraft changes a drafted text message's text.
func (s *Server) editDraft(by string, r *DraftEditRequest) error {
	drafts, err := s.Client.Drafts()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(drafts, func(d client.Draft) bool { return d.ID == r.ID })
	if i < 0 {
		return fmt.Errorf("%w: %s", client.ErrNoDraft, r.ID)
	}
	req, err := ParseRequest(drafts[i].Payload)
	if err != nil {
		return err
	}
	send, ok := req.(*SendRequest)
	if !ok || send.File != nil {
		return errors.New("control: only a drafted text message is edited; reject the draft and draft it again")
	}
	send.Text = r.Text
	payload, err := Marshal(send)
	if err != nil {
		return err
	}
	return s.Client.EditDraft(by, r.ID, drafts[i].About, payload)
}

type approverKey struct{}

// approverIn names the officer whose approval the context carries out.
func approverIn(ctx context.Context) string {
	by, _ := ctx.Value(approverKey{}).(string)
	return by
}

// approve approves a draft and does what it asks, as its drafter; the
// trail records the operation with both officers.
func (s *Server) approve(ctx context.Context, by string, r *ApproveRequest) (ApproveResponse, error) {
	d, err := s.Client.ApproveDraft(by, r.ID, r.MAC)
	if err != nil {
		return ApproveResponse{}, err
	}
	req, err := ParseRequest(d.Payload)
	if err == nil {
		// The drafter must still be allowed what they drafted.
		if cmd, ok := Lookup(req.Op()); ok {
			err = s.Client.May(d.DraftedBy, cmd.role())
		}
	}
	if err != nil {
		return ApproveResponse{}, errors.Join(err, s.Client.DraftDone(d.ID, "", err))
	}
	resp, err := s.handle(context.WithValue(ctx, approverKey{}, by), d.DraftedBy, req)
	if _, wipe := req.(*WipeRequest); wipe && err == nil {
		return ApproveResponse{Op: req.Op()}, nil // the state, the draft with it, is gone
	}
	if err != nil {
		return ApproveResponse{}, errors.Join(err, s.Client.DraftDone(d.ID, "", err))
	}
	result := ""
	if id, ok := resp.(IDResponse); ok {
		result = id.ID
	}
	if action, object, ok := audited(req, resp); ok {
		object = objectOf(object, fmt.Sprintf("drafted by %s in draft %s", d.DraftedBy, d.ID))
		if err := s.Client.Record(by, action, object); err != nil {
			return ApproveResponse{}, fmt.Errorf("done, but the audit trail did not record it: %w", err)
		}
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		return ApproveResponse{}, err
	}
	return ApproveResponse{Op: req.Op(), Result: raw}, s.Client.DraftDone(d.ID, result, nil)
}
