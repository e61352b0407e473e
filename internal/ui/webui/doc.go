// Package webui serves a client's local web interface: a page of plain
// HTML, CSS and JavaScript modules embedded in the binary (no bundler, no
// other toolchain, nothing fetched at run time), and a small JSON API over
// the very operations of the control socket (package control), with live
// updates as server-sent events.
//
// The interface is for one user on one computer that others may share, so
// every request passes these checks:
//
//   - the listener is on a loopback address ([Listen] refuses any other);
//   - the Host header must name that address and port (or localhost and
//     the port), which defeats DNS rebinding: a page of another site whose
//     name was pointed at 127.0.0.1 sends its own name;
//   - the first request carries the secret token of the URL that
//     `backchannel ui` prints; it is exchanged for a session cookie
//     (HttpOnly, SameSite=Strict, named after the port so that two clients
//     on one computer keep theirs) and the token leaves the address bar;
//     every other request needs that cookie;
//   - every state-changing request is a POST whose X-Backchannel-CSRF
//     header carries the session's CSRF token, whose Origin, when the
//     browser sends one, is the interface itself, and whose body is JSON;
//   - responses carry a strict Content-Security-Policy (the interface's
//     own scripts, styles, images and connections only; no inline script,
//     no frames), and files received are only ever sent as downloads;
//   - after an idle time the interface locks and asks for the passphrase
//     again, and the server refuses everything but unlocking meanwhile.
//     The client itself keeps running while the screen is locked — it goes
//     on sending cover traffic and fetching messages — since a client that
//     fell silent whenever its user stepped away would tell an observer
//     when that was.
//
// It does not keep the client's state (package client), define the
// operations (package control) or parse the command line (cmd/backchannel).
package webui
