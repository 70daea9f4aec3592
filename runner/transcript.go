package runner

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/iso7816"
)

// recorder is a Conn that records each command it sends in a transcript,
// its data masked where it may hold a PIN (maskCommand): a dry run's
// (DryResult.Transcript) and a run's whose job asks for one
// (Job.Transcript, Result.Transcript). A line is "<step>: <command> ->
// <response>". The card profile's commands are not sent through it: the
// profile runs on the Conn underneath, and its own transcript, cpf's,
// which knows which data are secret, is added (profile).
type recorder struct {
	Conn
	step  string   // the step whose commands these are ("connect" before the first)
	lines []string // the transcript
	apdus int      // command APDUs sent, the profile's included
}

// record wraps conn in a recorder whose first lines are the connect's.
func record(conn Conn) *recorder { return &recorder{Conn: conn, step: "connect"} }

// at names the step whose commands follow; a nil recorder (a job without
// a transcript) records nothing.
func (r *recorder) at(step string) {
	if r != nil {
		r.step = step
	}
}

func (r *recorder) Transmit(cmd []byte) ([]byte, error) { return r.transmit(cmd, false) }

// TransmitSecret sends a command whose bytes hold a secret (an APDU script
// line that took a secret field's value): the transcript shows only its
// CLA and INS.
func (r *recorder) TransmitSecret(cmd []byte) ([]byte, error) { return r.transmit(cmd, true) }

func (r *recorder) transmit(cmd []byte, secret bool) ([]byte, error) {
	r.apdus++
	line := r.step + ": " + maskCommand(cmd, secret)
	resp, err := r.Conn.Transmit(cmd)
	if err != nil {
		line += " -> error: " + err.Error()
	} else {
		line += " -> " + strings.ToUpper(hex.EncodeToString(resp))
	}
	r.lines = append(r.lines, line)
	return resp, err
}

// Serial is the Conn's Serial, its commands recorded when the Conn says
// which it sends (SerialReader).
func (r *recorder) Serial() ([]byte, error) {
	if sr, ok := r.Conn.(SerialReader); ok {
		return sr.SerialVia(r)
	}
	return r.Conn.Serial()
}

// profile adds a card profile's run to the transcript: its lines (cpf's,
// one per command with its GET RESPONSEs) and its APDU count.
func (r *recorder) profile(run ProfileRun) {
	r.apdus += run.APDUs
	for _, l := range run.Transcript {
		r.lines = append(r.lines, r.step+": "+l)
	}
}

// SerialReader is a Conn whose Serial sends commands to the card (GET DATA
// 5A, ReadSerial). SerialVia reads the serial as Serial does, sending the
// commands through card: the Conn itself, or a wrapper of it that records
// them in a job's transcript (Job.Transcript), so that a transcript holds
// the ICCSN reads and re-identifications too. runner/pcscreaders and
// runner/runnertest implement it.
type SerialReader interface {
	Conn
	SerialVia(card iso7816.Card) ([]byte, error)
}

// secretTransmitter is a Conn whose transcript masks a command: a
// recorder's, for an APDU script line that took a secret field's value.
type secretTransmitter interface {
	TransmitSecret(cmd []byte) ([]byte, error)
}

// cardConn is a dry run's Conn: the in-memory card, no reader, no
// transaction.
type cardConn struct{ card iso7816.Card }

func (c cardConn) Transmit(cmd []byte) ([]byte, error) { return c.card.Transmit(cmd) }

func (c cardConn) ATR() []byte {
	if a, ok := c.card.(interface{ ATR() []byte }); ok {
		return a.ATR()
	}
	return nil
}

func (c cardConn) Serial() ([]byte, error) { return c.SerialVia(c) }

// SerialVia reads the ICCSN as the PC/SC adapter does: a card that refuses
// GET DATA 5A has none.
func (c cardConn) SerialVia(card iso7816.Card) ([]byte, error) {
	s, err := ReadSerial(card)
	var se *iso7816.StatusError
	if errors.As(err, &se) {
		return nil, nil
	}
	return s, err
}

func (c cardConn) Begin() error { return nil }
func (c cardConn) End() error   { return nil }
func (c cardConn) Close() error { return nil }

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
