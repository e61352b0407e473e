// Package interest is the mutual interest check: A asks B a question ("are
// you open to talks on …?"); each answers yes or no privately; both learn
// "both said yes" only if both did, and a party who said no learns nothing
// of the other's answer. It runs the Socialist Millionaires' Protocol
// (package smp) on each side's secret: HashToScalar("yes" ‖ C) for yes, a
// fresh random scalar otherwise, where C binds the session, both identity
// keys, the check's fresh ID and the question (smp.Context).
//
// The one inherent leak, stated plainly: a party who says yes learns the
// other's answer (if the result is "no match", the other said no or did not
// decide). Asking is answering: the asker gives its answer when it asks.
//
// To keep "no", "undecided" and "yes" alike on the wire, the asked side
// sends its protocol message at the deadline whatever and whenever it
// decided — with a random secret if it did not decide — and the rest runs
// at once. Aborts, protocol errors and time-outs all end as "no match". A
// check ID is used once; asking again takes a new one.
//
// It is the check's logic and wire format; sending its messages inside the
// session, on the cover-traffic schedule, and keeping checks is the
// client's.
package interest

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gtank/ristretto255"

	"github.com/backchannel/backchannel/internal/features/smp"
)

// Answer is a side's answer.
type Answer uint8

const (
	Undecided Answer = 0
	Yes       Answer = 1
	No        Answer = 2
)

func (a Answer) String() string {
	switch a {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "undecided"
}

// Result is how a check ended.
type Result uint8

const (
	// Pending: the check is running.
	Pending Result = 0
	// Match: both said yes.
	Match Result = 1
	// NoMatch: not both said yes — or the check was aborted, failed or
	// timed out, which look the same.
	NoMatch Result = 2
)

func (r Result) String() string {
	switch r {
	case Match:
		return "match: both said yes"
	case NoMatch:
		return "no match"
	}
	return "pending"
}

// Role is a side's part in a check.
type Role uint8

const (
	// Asker asked the question; it runs the SMP initiator.
	Asker Role = 1
	// Asked was asked; it runs the SMP responder.
	Asked Role = 2
)

// Grace is how long after the deadline the asker waits for the protocol to
// finish before it calls the check timed out.
const Grace = 10 * time.Minute

// Check is one side of a check.
type Check struct {
	ID       [IDSize]byte
	Role     Role
	Question string
	Deadline time.Time
	Answer   Answer
	Result   Result
	// Reason says why a check ended without a match when it was not a
	// plain "no": aborted, failed, timed out.
	Reason string
	// Message1 is the asker's first SMP message, kept by the asked side
	// until its deadline.
	Message1 []byte

	context   []byte
	initiator *smp.Initiator
	responder *smp.Responder
	sent2     bool
}

// Errors.
var (
	// ErrState: a message does not fit the check's state (out of turn, a
	// repeat, or for a check that is over).
	ErrState = errors.New("interest: message out of turn")
)

// secret is a side's SMP input.
func secret(rand io.Reader, a Answer, context []byte) (*ristretto255.Scalar, error) {
	if a == Yes {
		return smp.Secret("yes", context), nil
	}
	return smp.RandomSecret(rand)
}

// Ask starts a check as the asker, with its answer, and returns the message
// to send. context is smp.Context of the session, both identity keys, id and
// question.
func Ask(rand io.Reader, id [IDSize]byte, question string, deadline time.Time, answer Answer, context []byte) (*Check, *Message, error) {
	if answer == Undecided {
		return nil, nil, errors.New("interest: the asker answers when asking: yes or no")
	}
	if err := checkQuestion(question); err != nil {
		return nil, nil, err
	}
	x, err := secret(rand, answer, context)
	if err != nil {
		return nil, nil, err
	}
	in, m1, err := smp.Start(rand, x, context)
	if err != nil {
		return nil, nil, err
	}
	raw, err := m1.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	c := &Check{ID: id, Role: Asker, Question: question, Deadline: deadline.UTC().Truncate(time.Second), Answer: answer, context: context, initiator: in}
	return c, &Message{Type: TypeAsk, CheckID: id, Question: question, Deadline: c.Deadline, SMP: raw}, nil
}

// Received makes the asked side's check from an Ask message.
func Received(m *Message, context []byte) (*Check, error) {
	if m.Type != TypeAsk {
		return nil, fmt.Errorf("%w: a check starts with an ask, not %s", ErrState, m.Type)
	}
	return &Check{ID: m.CheckID, Role: Asked, Question: m.Question, Deadline: m.Deadline, Message1: m.SMP, context: context}, nil
}

// SetContext gives a check loaded from storage its context again.
func (c *Check) SetContext(context []byte) { c.context = context }

// Due is called as time passes. At the deadline the asked side sends its
// protocol message (with a random secret if it did not decide); after the
// deadline and the grace period, a check still pending times out. It
// returns the message to send, if any.
func (c *Check) Due(rand io.Reader, now time.Time) (*Message, error) {
	if c.Result != Pending {
		return nil, nil
	}
	if c.Role == Asked && !c.sent2 && !now.Before(c.Deadline) {
		c.sent2 = true
		if c.Message1 == nil {
			return c.fail("the question's protocol state was lost (a restart)")
		}
		var m1 smp.Message1
		if err := m1.UnmarshalBinary(c.Message1); err != nil {
			return c.fail("the asker's first message is malformed")
		}
		y, err := secret(rand, c.Answer, c.context)
		if err != nil {
			return nil, err
		}
		re, m2, err := smp.Respond(rand, y, c.context, &m1)
		if err != nil {
			return c.fail(fmt.Sprintf("the asker's first message does not verify: %v", err))
		}
		c.responder = re
		raw, err := m2.MarshalBinary()
		if err != nil {
			return nil, err
		}
		return &Message{Type: TypeStep, CheckID: c.ID, Step: 2, SMP: raw}, nil
	}
	if now.After(c.Deadline.Add(Grace)) {
		c.Result, c.Reason = NoMatch, "timed out"
	}
	return nil, nil
}

// fail ends the check without a match and tells the other side.
func (c *Check) fail(reason string) (*Message, error) {
	c.Result, c.Reason = NoMatch, reason
	return &Message{Type: TypeAbort, CheckID: c.ID}, nil
}

// Receive handles the other side's message and returns the reply to send,
// if any. A message that does not verify ends the check as "no match" and
// the reply aborts it at the other side too.
func (c *Check) Receive(m *Message) (*Message, error) {
	if m.CheckID != c.ID {
		return nil, fmt.Errorf("%w: a message for another check", ErrState)
	}
	if c.Result != Pending {
		return nil, fmt.Errorf("%w: the check is over", ErrState)
	}
	if m.Type == TypeAbort {
		c.Result, c.Reason = NoMatch, "the other side ended the check"
		return nil, nil
	}
	if m.Type != TypeStep {
		return nil, fmt.Errorf("%w: %s", ErrState, m.Type)
	}
	switch {
	case c.Role == Asker && m.Step == 2 && c.initiator != nil:
		var m2 smp.Message2
		if err := m2.UnmarshalBinary(m.SMP); err != nil {
			return c.fail("the answer is malformed")
		}
		m3, err := c.initiator.Step(&m2)
		if err != nil {
			return c.fail(fmt.Sprintf("the answer does not verify: %v", err))
		}
		raw, err := m3.MarshalBinary()
		if err != nil {
			return nil, err
		}
		return &Message{Type: TypeStep, CheckID: c.ID, Step: 3, SMP: raw}, nil
	case c.Role == Asked && m.Step == 3 && c.responder != nil:
		var m3 smp.Message3
		if err := m3.UnmarshalBinary(m.SMP); err != nil {
			return c.fail("the third message is malformed")
		}
		m4, equal, err := c.responder.Step(&m3)
		if err != nil {
			return c.fail(fmt.Sprintf("the third message does not verify: %v", err))
		}
		raw, err := m4.MarshalBinary()
		if err != nil {
			return nil, err
		}
		c.finish(equal)
		return &Message{Type: TypeStep, CheckID: c.ID, Step: 4, SMP: raw}, nil
	case c.Role == Asker && m.Step == 4 && c.initiator != nil:
		var m4 smp.Message4
		if err := m4.UnmarshalBinary(m.SMP); err != nil {
			return c.fail("the last message is malformed")
		}
		equal, err := c.initiator.Finish(&m4)
		if err != nil {
			return c.fail(fmt.Sprintf("the last message does not verify: %v", err))
		}
		c.finish(equal)
		return nil, nil
	case c.initiator == nil && c.responder == nil && c.Role == Asker:
		return c.fail("the question's protocol state was lost (a restart)")
	}
	return nil, fmt.Errorf("%w: step %d for the %s", ErrState, m.Step, c.Role)
}

func (c *Check) finish(equal bool) {
	c.Result = NoMatch
	if equal {
		c.Result = Match
	}
	c.initiator, c.responder = nil, nil
}

func (r Role) String() string {
	if r == Asker {
		return "asker"
	}
	return "asked side"
}
