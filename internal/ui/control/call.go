package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Call sends a request to the daemon listening at path and returns its
// response; a response that carries an error is returned as one.
func Call(path string, r *Request) (*Response, error) {
	r.Version = Version
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("no client daemon answers at %s (start it with `backchannel client run`): %w", path, err)
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(r); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, 1<<30)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control: reading the response: %w", err)
	}
	if resp.Version != Version {
		return nil, fmt.Errorf("control: the daemon speaks protocol version %d, this program %d", resp.Version, Version)
	}
	if resp.Error != "" {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}
