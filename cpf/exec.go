package cpf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/iso7816"
)

// Entry is one APDU exchange of an executed plan. Command is the encoded
// command with a secret data field replaced by <N secret bytes>; it holds
// no secret.
type Entry struct {
	Pos      Pos
	Stmt     string
	What     string
	Command  string
	Response string // hex of the response data and status word; empty on a transport error
	SW       uint16
	Err      error
}

// String renders the entry for transcripts: statement position, the APDU
// and the response.
func (e Entry) String() string {
	if e.Err != nil {
		return fmt.Sprintf("%d:%d %s\t%s -> error: %v", e.Pos.Line, e.Pos.Col, e.What, e.Command, e.Err)
	}
	return fmt.Sprintf("%d:%d %s\t%s -> %s", e.Pos.Line, e.Pos.Col, e.What, e.Command, e.Response)
}

// Result is what an execution did.
type Result struct {
	Transcript []Entry
	// APDUs is the number of command APDUs transmitted (GET RESPONSE and
	// chained parts included).
	APDUs int
	// Done lists what was written, in order.
	Done []string
}

// ExecError is a profile that stopped on the card: the statement, the
// APDU's purpose, the status word (0 when the transport failed) and what
// the card already holds. It unwraps to the card's error
// (*iso7816.StatusError, iso7816.ErrCardRemoved, context.Canceled…).
type ExecError struct {
	File string
	Pos  Pos
	Stmt string
	What string
	SW   uint16
	Err  error
	Done []string
}

func (e *ExecError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: %s: %s: %v", e.File, e.Pos.Line, e.Pos.Col, e.Stmt, e.What, e.Err)
	if len(e.Done) == 0 {
		b.WriteString("; nothing was written")
	} else {
		b.WriteString("; already written: " + strings.Join(e.Done, ", "))
	}
	return b.String()
}

func (e *ExecError) Unwrap() error { return e.Err }

// counter counts the APDUs a card is sent.
type counter struct {
	card iso7816.Card
	n    int
}

func (c *counter) Transmit(cmd []byte) ([]byte, error) {
	c.n++
	return c.card.Transmit(cmd)
}

// ErrStandIn is Execute's error for a plan prepared with Params.StandIn:
// its secrets are stand-ins, not the job's.
var ErrStandIn = errors.New("the plan was prepared with stand-in secrets and cannot be executed")

// Execute sends the plan to card. It checks ctx before every APDU and stops
// at the first failure with an *ExecError naming the statement. The card
// is expected in its initial state (reset, nothing selected); execution
// does not begin a PC/SC transaction, the caller does.
func (pl *Plan) Execute(ctx context.Context, card iso7816.Card) (*Result, error) {
	if pl.standIn {
		return nil, ErrStandIn
	}
	res := &Result{}
	cc := &counter{card: card}
	lim := iso7816.Limits{MaxNc: pl.Dialect.MaxNc}
	if pl.Dialect.Extended {
		lim.MaxNe = iso7816.MaxExtendedNe
	}
	fail := func(s *Step, sw uint16, err error) error {
		return &ExecError{File: pl.File, Pos: s.Pos, Stmt: s.Stmt, What: s.What, SW: sw, Err: err, Done: res.Done}
	}
	run := func(s *Step) (uint16, error) {
		if err := ctx.Err(); err != nil {
			return 0, fail(s, 0, err)
		}
		e := Entry{Pos: s.Pos, Stmt: s.Stmt, What: s.What, Command: formatCommand(s.Cmd, s.Secret)}
		r, err := iso7816.Exchange(cc, s.Cmd, lim)
		res.APDUs = cc.n
		if err != nil {
			e.Err = err
			res.Transcript = append(res.Transcript, e)
			return 0, fail(s, 0, err)
		}
		e.SW = r.SW
		e.Response = strings.ToUpper(hex.EncodeToString(r.Bytes()))
		res.Transcript = append(res.Transcript, e)
		return r.SW, nil
	}
	for i := range pl.Steps {
		s := &pl.Steps[i]
		sw, err := run(s)
		if err != nil {
			return res, err
		}
		if sw == iso7816.SWFileNotFound && s.IfNotFound != nil {
			s = s.IfNotFound
			if sw, err = run(s); err != nil {
				return res, err
			}
		}
		if sw != iso7816.SWOK {
			return res, fail(s, sw, iso7816.StatusErr(sw))
		}
		if s.Done != "" {
			res.Done = append(res.Done, s.Done)
		}
	}
	return res, nil
}

// formatCommand renders a command APDU as hex, its data field replaced by
// <N secret bytes> when secret is set.
func formatCommand(c iso7816.Command, secret bool) string {
	b, err := c.Bytes()
	if err != nil {
		return fmt.Sprintf("%02X%02X%02X%02X (unencodable: %v)", c.CLA, c.INS, c.P1, c.P2, err)
	}
	up := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	if !secret || len(c.Data) == 0 {
		return up(b)
	}
	lc := 1
	if c.Extended() {
		lc = 3
	}
	return strings.TrimSpace(fmt.Sprintf("%s <%d secret bytes> %s", up(b[:4+lc]), len(c.Data), up(b[4+lc+len(c.Data):])))
}

// Transcript renders entries one per line.
func Transcript(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
