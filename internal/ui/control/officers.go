package control

import (
	"github.com/backchannel/backchannel/internal/client"
)

type (
	// OfficerListRequest lists the identity's officers and their roles.
	OfficerListRequest  struct{}
	OfficerListResponse struct {
		Officers []client.Officer `json:"officers"`
	}
	// OfficerAddRequest adds an officer, who will unlock with Passphrase
	// (typed by them), holding Roles.
	OfficerAddRequest struct {
		Name       string        `json:"name"`
		Passphrase string        `json:"passphrase"`
		Roles      []client.Role `json:"roles"`
	}
	// OfficerRemoveRequest removes an officer: their passphrase opens
	// nothing of the state from then on.
	OfficerRemoveRequest struct {
		Name string `json:"name"`
	}
	// OfficerRoleRequest gives an officer the roles.
	OfficerRoleRequest struct {
		Name  string        `json:"name"`
		Roles []client.Role `json:"roles"`
	}
)

func (OfficerListRequest) Op() string   { return "officer-list" }
func (OfficerAddRequest) Op() string    { return "officer-add" }
func (OfficerRemoveRequest) Op() string { return "officer-remove" }
func (OfficerRoleRequest) Op() string   { return "officer-role" }

func (OfficerListRequest) Check() error { return nil }
func (r OfficerAddRequest) Check() error {
	return need(r.Name != "" && r.Passphrase != "" && len(r.Roles) > 0, "a name, a passphrase and roles")
}
func (r OfficerRemoveRequest) Check() error { return need(r.Name != "", "a name") }
func (r OfficerRoleRequest) Check() error {
	return need(r.Name != "" && len(r.Roles) > 0, "a name and roles")
}

// handleOfficers answers the officers' requests. The client records their
// changes in the audit trail itself (client/officers.go).
func (s *Server) handleOfficers(r Request) (any, bool, error) {
	c := s.Client
	var err error
	switch r := r.(type) {
	case *OfficerListRequest:
	case *OfficerAddRequest:
		err = c.AddOfficer(r.Name, []byte(r.Passphrase), r.Roles)
	case *OfficerRemoveRequest:
		err = c.RemoveOfficer(r.Name)
	case *OfficerRoleRequest:
		err = c.SetRoles(r.Name, r.Roles)
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return OfficerListResponse{Officers: c.Officers()}, true, nil
}
