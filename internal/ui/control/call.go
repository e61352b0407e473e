package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Call sends a request to the daemon listening at path and decodes its
// result into result (the operation's response type; nil to ignore it).
// A response that carries an error is returned as one.
func Call(path string, r Request, result any) error { return CallAs(path, "", r, result) }

// CallAs is Call with an officer's login token (empty: none).
func CallAs(path, token string, r Request, result any) error {
	data, err := marshalAs(r, token)
	if err != nil {
		return err
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("no client daemon answers at %s (start it with `backchannel client run`): %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write(data); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, 1<<30)).Decode(&resp); err != nil {
		return fmt.Errorf("control: reading the response: %w", err)
	}
	if resp.Version != Version {
		return fmt.Errorf("control: the daemon speaks protocol version %d, this program %d", resp.Version, Version)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	if resp.Drafted {
		d := &Drafted{}
		if err := json.Unmarshal(resp.Result, &d.DraftedResponse); err != nil {
			return fmt.Errorf("control: decoding the %s response: %w", r.Op(), err)
		}
		return d
	}
	if result == nil || len(resp.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("control: decoding the %s response: %w", r.Op(), err)
	}
	return nil
}

// Drafted is what CallAs returns for a request that was kept as a draft:
// not done yet, and not an error of the request's.
type Drafted struct{ DraftedResponse }

func (d *Drafted) Error() string {
	return fmt.Sprintf("kept as draft %s: it is done when another officer with the %s role approves it (backchannel approve %s)", d.Draft, d.Needs, d.Draft)
}
