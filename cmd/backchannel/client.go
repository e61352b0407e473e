package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/backchannel/backchannel/internal/base/config"
	"github.com/backchannel/backchannel/internal/client"
	"github.com/backchannel/backchannel/internal/features"
	"github.com/backchannel/backchannel/internal/features/interest"
	"github.com/backchannel/backchannel/internal/packet/sphinx"
	"github.com/backchannel/backchannel/internal/ui/control"
)

// The client's commands. The daemon (`client run`) holds the unlocked
// state and keeps the schedule; the other commands talk to it over the
// control socket in the state directory, except init and restore, which
// make a state directory, and run without a daemon.

// clientFlags are the flags every client command takes: its own flag set
// from the table of commands, and the state directory.
func clientFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := newFlags(name, stderr)
	def := os.Getenv("BACKCHANNEL_DIR")
	if def == "" {
		if home, err := os.UserHomeDir(); err == nil {
			def = filepath.Join(home, ".backchannel")
		}
	}
	dir := fs.String("dir", def, "the client's state directory ($BACKCHANNEL_DIR, if set, is the default)")
	return fs, dir
}

func socketPath(dir string) string { return filepath.Join(dir, "control.sock") }

// passphrase reads a passphrase: from the environment variable env if set
// (for scripts and tests), else from the terminal, asked twice if confirm.
func passphrase(env, prompt string, confirm bool, stderr io.Writer) ([]byte, error) {
	if v, ok := os.LookupEnv(env); ok {
		if v == "" {
			return nil, fmt.Errorf("%s is set but empty", env)
		}
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no passphrase: set %s or run from a terminal", env)
	}
	fmt.Fprint(stderr, prompt+": ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("an empty passphrase")
	}
	if confirm {
		fmt.Fprint(stderr, "again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if string(again) != string(p) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

// runInit is `backchannel init`: a new identity at a provider of the
// network.
func runInit(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("init", stderr)
	networkPath := fs.String("network", "", "the network's bootstrap file (network.toml)")
	providerName := fs.String("provider", "", "the provider to have an account at")
	officer := fs.String("officer", client.DefaultOfficer, "the name of the identity's first officer, who holds every role")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *networkPath == "" || *providerName == "" {
		fmt.Fprintln(stderr, "backchannel: init needs --network FILE and --provider NAME")
		return 2
	}
	err := func() error {
		n, err := config.LoadNetwork(*networkPath)
		if err != nil {
			return err
		}
		p, err := n.Provider(*providerName)
		if err != nil {
			return err
		}
		format, err := packetFormat(n.PacketFormat)
		if err != nil {
			return fmt.Errorf("%s: packet_format: %w", *networkPath, err)
		}
		network := client.Network{Threshold: n.Threshold, ClockSkew: n.ClockSkew.Duration, Provider: client.Provider{Name: p.Name, Address: p.Address},
			Geometry: sphinx.Geometry{MaxHops: n.MaxHops, UserPayloadLength: n.Payload, Scheme: format}}
		for _, a := range n.Authorities {
			key, _ := hex.DecodeString(a) // checked by LoadNetwork
			network.Authorities = append(network.Authorities, ed25519.PublicKey(key))
		}
		link, _ := hex.DecodeString(p.LinkKey)
		id, _ := hex.DecodeString(p.IdentityKey)
		network.Provider.LinkKey, network.Provider.Identity = [32]byte(link), [32]byte(id)
		pass, err := passphrase("BACKCHANNEL_PASSPHRASE", "a passphrase for the new state", true, stderr)
		if err != nil {
			return err
		}
		c, account, err := client.Create(client.Config{Dir: *dir, Passphrase: pass, Officer: *officer, Rand: rand.Reader}, network)
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprintf(stdout, "created %s\n", *dir)
		fmt.Fprintf(stdout, "ask the operator of %s to give you an account:\n", p.Name)
		fmt.Fprintf(stdout, "  backchannel provider add-user --accounts ACCOUNTS --link-key %x --mailbox %x\n", account.LinkKey, account.Mailbox)
		fmt.Fprintf(stdout, "then start the client: backchannel client run --dir %s\n", *dir)
		return nil
	}()
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: init: %v\n", err)
		return 1
	}
	return 0
}

// runClient is `backchannel client run`: the daemon.
func runClient(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "run" {
		return usageOf("client", stderr)
	}
	fs, dir := clientFlags("client run", stderr)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	budget := fs.Duration("time-budget", client.DefaultTimeBudget, "how long a message may take to be acknowledged before it is marked failed (it is sent again until then)")
	checks := fs.Int("max-checks-per-day", interest.DefaultMaxPerDay, "how many mutual interest checks a contact may ask you in a day (the rest are answered no)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	logger := newLogger(stderr, *logLevel)
	err := func() error {
		// Before asking a passphrase for nothing:
		if !client.HasState(*dir) {
			return noState(*dir)
		}
		if err := client.CheckFree(*dir); err != nil {
			return err
		}
		pass, err := passphrase("BACKCHANNEL_PASSPHRASE", "passphrase", false, stderr)
		if err != nil {
			return err
		}
		c, err := client.Open(client.Config{Dir: *dir, Passphrase: pass, Rand: rand.Reader, TimeBudget: *budget, Logger: logger})
		clear(pass)
		if errors.Is(err, client.ErrNoState) {
			return noState(*dir)
		}
		if err != nil {
			return err
		}
		defer c.Close()
		feats, err := features.Register(c, features.Config{MaxChecksPerDay: *checks})
		if err != nil {
			return err
		}
		ln, err := control.Listen(socketPath(*dir))
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		done := make(chan error, 1)
		go func() {
			done <- (&control.Server{Client: c, Features: feats, Logger: logger, Wiped: stop}).Serve(ctx, ln)
		}()
		notifyReady(logger)
		logger.Info("client running", "socket", socketPath(*dir))
		fmt.Fprintln(stdout, "client running; stop it with Ctrl-C")
		runErr := c.Run(ctx)
		stop()
		if err := <-done; err != nil {
			return err
		}
		if errors.Is(runErr, client.ErrWiped) {
			fmt.Fprintln(stdout, "the state was wiped; the client stops")
			return nil
		}
		return runErr
	}()
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: client: %v\n", err)
		return 1
	}
	return 0
}

// call runs one request against the daemon and reports an error the
// backchannel way.
func call[T any](dir string, r control.Request, stderr io.Writer) (T, bool) {
	resp, err := callErr[T](dir, r)
	if err != nil {
		fmt.Fprintf(stderr, "backchannel: %s: %v\n", r.Op(), err)
		return resp, false
	}
	return resp, true
}

// callAct is call for an operation that dual control may keep as a
// draft: done is false when it was (said on stdout, exit status 0) or when
// it failed (said on stderr, exit status 1).
func callAct[T any](dir string, r control.Request, stdout, stderr io.Writer) (resp T, code int, done bool) {
	resp, err := callErr[T](dir, r)
	var drafted *control.Drafted
	switch {
	case errors.As(err, &drafted):
		fmt.Fprintf(stdout, "%s: %v\n", r.Op(), drafted)
		return resp, 0, false
	case err != nil:
		fmt.Fprintf(stderr, "backchannel: %s: %v\n", r.Op(), err)
		return resp, 1, false
	}
	return resp, 0, true
}

// callErr asks the daemon in dir, with this terminal's officer login, if
// any ($BACKCHANNEL_OFFICER_TOKEN).
func callErr[T any](dir string, r control.Request) (T, error) {
	var resp T
	if !client.HasState(dir) {
		return resp, noState(dir)
	}
	err := control.CallAs(socketPath(dir), os.Getenv(tokenEnv), r, &resp)
	return resp, err
}

// noState says what to do where there is no client state.
func noState(dir string) error {
	return fmt.Errorf("no client state at %s: make one with `backchannel init --dir %s`, or give the --dir of yours", dir, dir)
}

// runCard is `backchannel card`: the user's own card, as text.
func runCard(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("card", stderr)
	classical := fs.Bool("classical", false, "print the card in the previous release's format (version 1), for a contact whose software reads no other: that contact writes to you in the classical envelope, which someone who later breaks X25519 can open, until it upgrades")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	resp, ok := call[control.CardResponse](*dir, &control.CardRequest{Classical: *classical}, stderr)
	if !ok {
		return 1
	}
	fmt.Fprint(stdout, resp.Card)
	return 0
}

// runContact is `backchannel contact add|list|verify|rename|expire`.
func runContact(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageOf("contact", stderr)
	}
	fs, dir := clientFlags("contact "+args[0], stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var req control.Request
	switch {
	case args[0] == "add" && fs.NArg() == 2:
		card, err := readInput(fs.Arg(1))
		if err != nil {
			fmt.Fprintf(stderr, "backchannel: contact add: %v\n", err)
			return 1
		}
		req = &control.ContactAddRequest{Name: fs.Arg(0), Card: string(card)}
	case args[0] == "list" && fs.NArg() == 0:
		req = &control.ContactListRequest{}
	case args[0] == "verify" && fs.NArg() == 1:
		req = &control.ContactVerifyRequest{Name: fs.Arg(0)}
	case args[0] == "budget" && fs.NArg() == 2:
		d, err := time.ParseDuration(fs.Arg(1))
		if err != nil || d < 0 {
			fmt.Fprintf(stderr, "backchannel: contact budget: %q is not a duration (say 12h, 168h for a week, or 0 for the default)\n", fs.Arg(1))
			return 2
		}
		req = &control.ContactBudgetRequest{Name: fs.Arg(0), Budget: d}
	case args[0] == "rename" && fs.NArg() == 2:
		req = &control.ContactRenameRequest{Name: fs.Arg(0), NewName: fs.Arg(1)}
	case args[0] == "expire" && fs.NArg() == 2:
		d, err := time.ParseDuration(fs.Arg(1))
		if err != nil {
			fmt.Fprintf(stderr, "backchannel: contact expire: %q is not a duration (say 24h, 30m or 0 for off)\n", fs.Arg(1))
			return 2
		}
		req = &control.ContactExpireRequest{Name: fs.Arg(0), After: d}
	default:
		return usageOf("contact "+args[0], stderr)
	}
	resp, ok := call[control.ContactsResponse](*dir, req, stderr)
	if !ok {
		return 1
	}
	if args[0] != "list" {
		// A change: say what it did to that contact, not the whole list.
		for _, ct := range resp.Contacts {
			if ct.Name == fs.Arg(0) || args[0] == "rename" && ct.Name == fs.Arg(1) {
				fmt.Fprintln(stdout, contactChanged(args[0], ct))
			}
		}
		return 0
	}
	for _, ct := range resp.Contacts {
		verified := "not verified"
		if ct.Verified {
			verified = "verified"
		}
		fmt.Fprintf(stdout, "%s\n  safety number %s (%s)\n  session: %s\n", ct.Name, ct.SafetyNumber, verified, ct.Session)
		if ct.Envelope != "" {
			fmt.Fprintf(stdout, "  envelopes: %s\n", ct.Envelope)
		}
		if ct.TimeBudget > 0 {
			fmt.Fprintf(stdout, "  messages to them fail if not acknowledged within %v\n", ct.TimeBudget)
		}
		if ct.Expiry > 0 {
			fmt.Fprintf(stdout, "  messages disappear %v after they are delivered or received, at both ends\n", ct.Expiry)
		}
		if ct.Notice != "" {
			fmt.Fprintf(stdout, "  note: %s\n", ct.Notice)
		}
	}
	return 0
}

// contactChanged confirms a change to a contact: an addition, a
// verification or a disappearing-messages setting.
func contactChanged(change string, ct client.ContactInfo) string {
	switch change {
	case "add":
		return fmt.Sprintf("added %s; safety number %s: compare it with theirs, then `backchannel contact verify %q`", ct.Name, ct.SafetyNumber, ct.Name)
	case "verify":
		return fmt.Sprintf("%s is verified", ct.Name)
	case "rename":
		return fmt.Sprintf("renamed to %s (the name is yours alone: they are not told)", ct.Name)
	case "budget":
		if ct.TimeBudget == 0 {
			return fmt.Sprintf("messages to %s now take the client's time budget", ct.Name)
		}
		return fmt.Sprintf("messages to %s queued from now on fail if not acknowledged within %v", ct.Name, ct.TimeBudget)
	case "expire":
		if ct.Expiry == 0 {
			return fmt.Sprintf("messages with %s no longer disappear; %s's client is told", ct.Name, ct.Name)
		}
		return fmt.Sprintf("messages with %s now disappear %v after they are delivered or received, at both ends; %s's client is told", ct.Name, ct.Expiry, ct.Name)
	}
	return ct.Name
}

// readInput reads a file, or standard input for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(bufio.NewReader(os.Stdin))
	}
	return os.ReadFile(path)
}

// runSend is `backchannel send NAME TEXT` or `send --file PATH NAME`.
func runSend(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("send", stderr)
	file := fs.String("file", "", "send this file instead of a text")
	within := fs.Duration("within", 0, "the message fails if not acknowledged within this long (default: the contact's or the client's time budget)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req := control.SendRequest{To: fs.Arg(0), Within: *within}
	switch {
	case *file != "" && fs.NArg() == 1:
		data, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "backchannel: send: %v\n", err)
			return 1
		}
		req.File = &control.File{Name: filepath.Base(*file), Data: data}
	case *file == "" && fs.NArg() >= 2:
		req.Text = strings.Join(fs.Args()[1:], " ")
	default:
		return usageOf("send", stderr)
	}
	resp, code, done := callAct[control.IDResponse](*dir, &req, stdout, stderr)
	if !done {
		return code
	}
	fmt.Fprintf(stdout, "queued %s\n", resp.ID)
	return 0
}

// runInbox is `backchannel inbox`: the received messages.
func runInbox(args []string, stdout, stderr io.Writer) int {
	fs, dir := clientFlags("inbox", stderr)
	save := fs.String("save", "", "save received files into this directory")
	wait := fs.Int("wait", 0, "first wait until the inbox holds this many messages")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *wait > 0 {
		if _, ok := call[control.StatusResponse](*dir, &control.WaitRequest{Until: "received", Count: *wait, Timeout: *timeout}, stderr); !ok {
			return 1
		}
	}
	resp, ok := call[control.MessagesResponse](*dir, &control.InboxRequest{}, stderr)
	if !ok {
		return 1
	}
	for _, m := range resp.Messages {
		when := m.Time.Local().Format("2006-01-02 15:04:05")
		if m.Conveyed {
			fmt.Fprintf(stdout, "%s  %s  from %q via %s: %s\n", m.ID, when, m.Label, m.Contact, m.Text)
			if m.Note != "" {
				fmt.Fprintf(stdout, "  note from %s: %s\n", m.Contact, m.Note)
			}
			fmt.Fprintf(stdout, "  (answer with: backchannel convey reply %s TEXT)\n", m.ID)
			continue
		}
		if m.Kind == client.Text.String() {
			fmt.Fprintf(stdout, "%s  %s  from %s: %s\n", m.ID, when, m.Contact, m.Text)
			continue
		}
		fmt.Fprintf(stdout, "%s  %s  from %s: file %q, %d bytes\n", m.ID, when, m.Contact, m.Name, m.Size)
		if *save != "" {
			if err := os.MkdirAll(*save, 0o700); err != nil {
				fmt.Fprintf(stderr, "backchannel: inbox: %v\n", err)
				return 1
			}
			f, ok := call[control.ReadResponse](*dir, &control.ReadRequest{ID: m.ID}, stderr)
			if !ok {
				return 1
			}
			// Only the base name: a sender must not choose where it goes.
			path := filepath.Join(*save, m.ID+"-"+filepath.Base(f.File.Name))
			if err := os.WriteFile(path, f.File.Data, 0o600); err != nil {
				fmt.Fprintf(stderr, "backchannel: inbox: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "  saved as %s\n", path)
		}
	}
	return 0
}
