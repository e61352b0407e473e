package main

import (
	"context"
	"fmt"

	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// The demo's mediator is an office of two officers under dual control:
// what the duty officer passes on leaves only once the head of office has
// approved it.
const (
	dutyOfficer  = "duty officer"
	headOfOffice = "head of office"
)

// officeOfTwo gives the mediator's identity its second officer and
// switches dual control on.
func officeOfTwo(tl *demoTimeline, mediator *demoUser) error {
	roles := []client.Role{client.RoleReader, client.RoleReleaser, client.RoleAdministrator}
	if err := mediator.c.AddOfficer(dutyOfficer, headOfOffice, []byte("the head of office's own demo passphrase"), roles); err != nil {
		return err
	}
	if err := mediator.c.SetDualControl(dutyOfficer, true, ""); err != nil {
		return err
	}
	tl.say("the mediator's office has two officers, the %s and the %s, each with a passphrase of their own; dual control is on: nothing leaves without a second officer's approval", dutyOfficer, headOfOffice)
	return nil
}

// releaseByTwo asks r as the duty officer, through the daemon's control
// layer as the command line and the web interface do: dual control keeps
// it as a draft, which the head of office approves, as shown.
func releaseByTwo(tl *demoTimeline, u *demoUser, r control.Request) error {
	srv := &control.Server{Client: u.c, Features: u.f}
	ctx := context.Background()
	resp, err := srv.Handle(control.WithOfficer(ctx, dutyOfficer), r)
	if err != nil {
		return err
	}
	drafted, ok := resp.(control.DraftedResponse)
	if !ok {
		return fmt.Errorf("dual control did not hold the %s", r.Op())
	}
	head := control.WithOfficer(ctx, headOfOffice)
	list, err := srv.Handle(head, &control.DraftsRequest{})
	if err != nil {
		return err
	}
	for _, d := range list.(control.DraftsResponse).Drafts {
		if d.ID != drafted.Draft {
			continue
		}
		tl.say("it waits as draft %.8s…; the %s looks at it (content hash %s) and approves it", d.ID, headOfOffice, d.MAC)
		if _, err := srv.Handle(head, &control.ApproveRequest{ID: d.ID, MAC: d.MAC}); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("draft %s is not listed", drafted.Draft)
}
