// Package iotime measures where a job's time goes: waiting on the card
// (PC/SC), on the PKCS#11 module and on the certificate issuer, for the
// figures of `cardwright encode --timing` (docs/runner.md).
//
// A Clock is handed to the adapters explicitly (pcscreaders.New,
// p11tokens.New, Issuer); a nil *Clock measures nothing, so adapters built
// without one pay only a nil check.
package iotime

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cardwright/cardwright/issuer"
)

// Clock adds up the time spent in card I/O, PKCS#11 and the issuer. It is
// safe for concurrent use (jobs in several readers share one).
type Clock struct {
	card, token, issuer atomic.Int64 // nanoseconds
	apdus, calls        atomic.Int64

	// OnAPDU, if set before the Clock is used, is told each APDU's round
	// trip (the station's metrics, spec/station.md "Observability"). It
	// is called on the adapter's goroutine and must not block.
	OnAPDU func(d time.Duration)
}

// Totals is what a Clock has counted.
type Totals struct {
	Card   time.Duration // PC/SC: APDUs, connect, transactions, reset
	APDUs  int64
	Token  time.Duration // PKCS#11 calls, signing included
	Calls  int64
	Issuer time.Duration
}

// Totals returns the sums so far; a nil Clock has none.
func (c *Clock) Totals() Totals {
	if c == nil {
		return Totals{}
	}
	return Totals{Card: time.Duration(c.card.Load()), APDUs: c.apdus.Load(),
		Token: time.Duration(c.token.Load()), Calls: c.calls.Load(), Issuer: time.Duration(c.issuer.Load())}
}

// APDU counts one APDU exchange that began at start.
func (c *Clock) APDU(start time.Time) {
	if c != nil {
		d := time.Since(start)
		c.card.Add(int64(d))
		c.apdus.Add(1)
		if c.OnAPDU != nil {
			c.OnAPDU(d)
		}
	}
}

// CardTime counts PC/SC time since start that is not an APDU (connect,
// transaction, reset).
func (c *Clock) CardTime(start time.Time) {
	if c != nil {
		c.card.Add(int64(time.Since(start)))
	}
}

// TokenCall counts one PKCS#11 call (or group of calls) that began at start.
func (c *Clock) TokenCall(start time.Time) {
	if c != nil {
		c.token.Add(int64(time.Since(start)))
		c.calls.Add(1)
	}
}

// IssuerTime counts issuer time since start.
func (c *Clock) IssuerTime(start time.Time) {
	if c != nil {
		c.issuer.Add(int64(time.Since(start)))
	}
}

// Issuer returns iss with its time counted on c; an issuer.Archiver stays
// one (key-archival answers are counted too).
func Issuer(iss issuer.Issuer, c *Clock) issuer.Issuer {
	if a, ok := iss.(issuer.Archiver); ok {
		return timedArchiver{timedIssuer{iss, c}, a}
	}
	return timedIssuer{iss, c}
}

type timedArchiver struct {
	timedIssuer
	a issuer.Archiver
}

func (t timedArchiver) Archive(ctx context.Context, req issuer.Request) (issuer.Archived, error) {
	defer t.clock.IssuerTime(time.Now())
	return t.a.Archive(ctx, req)
}

type timedIssuer struct {
	iss   issuer.Issuer
	clock *Clock
}

func (t timedIssuer) Issue(ctx context.Context, req issuer.Request) ([]byte, [][]byte, error) {
	defer t.clock.IssuerTime(time.Now())
	return t.iss.Issue(ctx, req)
}
