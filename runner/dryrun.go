package runner

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/secret"
)

// DryResult is what a dry run did.
type DryResult struct {
	Steps []DryStep // every step of the job, in order
	// Transcript has one line per command the card was sent, prefixed by
	// its step ("InitToken: …", "connect: " for the ICCSN read when the
	// card is taken): the card profile's lines are cpf's (cpf.Entry.String,
	// one per command with its GET RESPONSEs), the others "APDU ->
	// response". Secret data fields are replaced by "<N secret bytes>": no
	// PIN is in it.
	Transcript []string
	APDUs      int           // command APDUs sent (GET RESPONSE and chained parts included)
	Err        *api.JobError // nil when the dry run got through
}

// DryStep is one step of a dry run.
type DryStep struct {
	Name, Key, File string
	Line            int
	Ran             bool   // executed on the in-memory card
	Note            string // what was not run and why, e.g. "PKCS#11 token: not run in a dry run"
}

// The notes of what a dry run leaves out.
const (
	noteToken       = "PKCS#11 token: not run in a dry run"
	noteTokenIssuer = "PKCS#11 token and certificate issuer: not run in a dry run"
)

// dryStep is a step's part in a dry run: run, if set, is what it does over
// PC/SC (on the dry run's card); note says what is left out. A step with
// neither runs nothing and is reported as not run.
type dryStep struct {
	run  func(ctx context.Context, s *Session, c *dryConn) error
	note string
}

// notRun is a dry step's error for a part it finds out only while running
// that it must leave out (the token's serial as the ICCSN).
type notRun string

func (n notRun) Error() string { return string(n) }

// dryStep is ps's part in a dry run: what talks to the card over PC/SC —
// the card erase, the card profile, APDU scripts, the ICCSN — runs; what
// needs the PKCS#11 token or the certificate issuer does not. run is the
// step's own Run, for steps that do no I/O (ClearFields).
func (j *job) dryStep(ps dsc.Step, run func(context.Context, *Session) error) dryStep {
	switch ps := ps.(type) {
	case *dsc.DeleteProfileStep:
		var d dryStep
		if j.ownsCard() && j.deps.Profiles != nil {
			d.run = func(ctx context.Context, s *Session, _ *dryConn) error { return j.eraseCard(ctx, s) }
		}
		if j.module != "" {
			d.note = "PKCS#11 token erase: not run in a dry run"
		}
		return d
	case *dsc.InitProfileStep:
		init := &ps.Init
		d := dryStep{run: func(ctx context.Context, s *Session, c *dryConn) error {
			// The card itself, not the recording Conn: the profile's
			// transcript is cpf's, which knows which data are secret.
			run, err := j.runProfile(ctx, s, init, c.card)
			c.res.APDUs += run.APDUs
			for _, l := range run.Transcript {
				c.res.Transcript = append(c.res.Transcript, c.step+": "+l)
			}
			return err
		}}
		if j.module != "" {
			d.note = "PKCS#11 token (a stand-in token's C_InitToken, C_InitPIN, encrypted PINs): not run in a dry run"
		}
		return d
	case *dsc.ApduScriptStep, *dsc.ClearFieldsStep:
		return dryStep{run: func(ctx context.Context, s *Session, _ *dryConn) error { return run(ctx, s) }}
	case *dsc.ReadICCSNStep:
		st := &ps.Finalize
		return dryStep{run: func(ctx context.Context, s *Session, _ *dryConn) error {
			if st.CMSSerial == "" && len(s.Serial) == 0 && j.module != "" {
				return notRun("the card has no serial (GET DATA 5A) and the PKCS#11 token's serial is not read in a dry run")
			}
			return j.readICCSN(ctx, s, st)
		}}
	case *dsc.ApplicationStep:
		if a := ps.App.Action; a == dsc.AppGenerateKey || a == dsc.AppUseObject {
			return dryStep{note: noteTokenIssuer}
		}
	}
	return dryStep{note: noteToken}
}

// DryRun validates job as Validate does and then runs what it does over
// PC/SC on card, an in-memory card the caller makes (iso7816/memcard): the
// card erase of DeleteProfile (when the job lays the card out itself), the
// card profile, APDU scripts and the ICCSN read. Steps that need the
// PKCS#11 token or the certificate issuer are listed, not run. No reader,
// token or issuer is used; PINs the description takes from dialogs are
// asked through the Engine's Prompter, as in a run, with Reader "dry run".
// A job that fails validation has Err and no transcript.
func (r *Runner) DryRun(ctx context.Context, job *Job, card iso7816.Card, progress func(Progress)) DryResult {
	plan, sel, steps, f := r.validate(job)
	if f != nil {
		return DryResult{Err: f.JobError()}
	}
	var res DryResult
	for _, st := range steps {
		res.Steps = append(res.Steps, DryStep{Name: st.Name, Key: st.Key, File: st.File, Line: st.Line, Note: st.dry.note})
	}
	if sel.AllCards {
		for _, ps := range plan.Steps {
			if ps, ok := ps.(*dsc.RetrieveTokensStep); ok {
				res.Steps = append(res.Steps, DryStep{Name: ps.Name, Key: ps.Key, File: plan.Description.Name, Line: ps.Pos.Line,
					Note: "the ICCSNs of the cards in the readers: not read in a dry run"})
			}
		}
		return res
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const reader = "dry run"
	conn := &dryConn{card: card, res: &res, step: "connect"}
	s := &Session{Reader: reader, Conn: conn, ATR: conn.ATR(), Outputs: map[string]string{}, Secrets: map[string]secret.Value{},
		origin: job.Origin, notify: job.PromptNotify, cancel: cancel}
	if r.Engine != nil {
		s.Prompter = r.Engine.Prompter
	}
	defer func() {
		s.end()
		for _, v := range s.Secrets {
			v.Wipe()
		}
	}()
	failWith := func(f *Failure) DryResult {
		res.Err = f.JobError()
		return res
	}
	var err error
	if s.Serial, err = conn.Serial(); err != nil {
		return failWith(classify("connect", err))
	}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return failWith(classify(st.Name, err))
		}
		if progress != nil {
			progress(Progress{Step: st.Name, N: i + 1, Total: len(steps), Reader: reader})
		}
		if st.dry.run == nil {
			continue
		}
		conn.step = st.Name
		err := st.dry.run(ctx, s, conn)
		var nr notRun
		if errors.As(err, &nr) {
			res.Steps[i].Note = string(nr)
			continue
		}
		res.Steps[i].Ran = true
		if err != nil {
			f := classify(st.Name, err)
			if f.Key == "" {
				f.Key = st.Key
			}
			if f.File == "" {
				f.File, f.Line = st.File, st.Line
			}
			for _, d := range res.Steps[:i] {
				if d.Ran {
					f.Done = append(f.Done, d.Name)
				}
			}
			return failWith(f)
		}
	}
	return res
}

// secretTransmitter is a Conn whose transcript masks a command: a dry
// run's, for an APDU script line that took a secret field's value.
type secretTransmitter interface {
	TransmitSecret(cmd []byte) ([]byte, error)
}

// dryConn is a dry run's Conn: the in-memory card, each command recorded
// in the transcript with PINs masked.
type dryConn struct {
	card iso7816.Card
	res  *DryResult
	step string // the step whose commands these are
}

func (c *dryConn) Transmit(cmd []byte) ([]byte, error) { return c.transmit(cmd, false) }

// TransmitSecret sends a command whose bytes hold a secret.
func (c *dryConn) TransmitSecret(cmd []byte) ([]byte, error) { return c.transmit(cmd, true) }

func (c *dryConn) transmit(cmd []byte, secret bool) ([]byte, error) {
	c.res.APDUs++
	line := c.step + ": " + maskCommand(cmd, secret)
	resp, err := c.card.Transmit(cmd)
	if err != nil {
		line += " -> error: " + err.Error()
	} else {
		line += " -> " + strings.ToUpper(hex.EncodeToString(resp))
	}
	c.res.Transcript = append(c.res.Transcript, line)
	return resp, err
}

func (c *dryConn) ATR() []byte {
	if a, ok := c.card.(interface{ ATR() []byte }); ok {
		return a.ATR()
	}
	return nil
}

// Serial reads the ICCSN as the PC/SC adapter does: a card that refuses
// GET DATA 5A has none.
func (c *dryConn) Serial() ([]byte, error) {
	s, err := ReadSerial(c)
	var se *iso7816.StatusError
	if errors.As(err, &se) {
		return nil, nil
	}
	return s, err
}

func (c *dryConn) Begin() error { return nil }
func (c *dryConn) End() error   { return nil }
func (c *dryConn) Close() error { return nil }

// isPINCommand reports a command whose data field holds a PIN: VERIFY
// (ISO/IEC 7816-4 §11.5.6, INS 20 and 21), CHANGE REFERENCE DATA
// (§11.5.7), ENABLE and DISABLE VERIFICATION REQUIREMENT (§11.5.8, §11.5.9,
// which may carry verification data), RESET RETRY COUNTER (§11.5.10), and
// the PUT DATA that creates a credential (iso7816.PutCredential, P1 01).
func isPINCommand(ins, p1 byte) bool {
	switch ins {
	case iso7816.InsVerify, iso7816.InsVerify | 1, iso7816.InsChangeReferenceData, 0x26, 0x28, iso7816.InsResetRetryCounter:
		return true
	case iso7816.InsPutData:
		return p1 == 0x01
	}
	return false
}

// maskCommand renders a command APDU as hex for a transcript, as cpf
// does: after the header and Lc of a PIN command, every byte (data and any
// Le) is replaced by "<N secret bytes>", so that no length field that
// understates the data can show a PIN byte; one whose Lc is missing or
// does not fit is masked after its header. A secret command (an APDU
// script line that took a secret field) shows only CLA and INS: a
// placeholder may be anywhere in it.
func maskCommand(cmd []byte, secret bool) string {
	up := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	if secret {
		if len(cmd) < 2 {
			return fmt.Sprintf("<%d secret bytes>", len(cmd))
		}
		return fmt.Sprintf("%s <%d secret bytes>", up(cmd[:2]), len(cmd)-2)
	}
	if len(cmd) <= 5 || !isPINCommand(cmd[1], cmd[2]) {
		return up(cmd) // no data field
	}
	start, n := 5, int(cmd[4])
	if cmd[4] == 0 && len(cmd) >= 7 { // extended Lc (ISO/IEC 7816-4 §5.1)
		start, n = 7, int(cmd[5])<<8|int(cmd[6])
	}
	if n == 0 || start+n > len(cmd) {
		start = 4
	}
	return fmt.Sprintf("%s <%d secret bytes>", up(cmd[:start]), len(cmd)-start)
}
