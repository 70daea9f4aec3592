// Package audit keeps a station's audit log (spec/station.md "Audit"): an
// append-only, hash-chained record of every job — when, for whom, which
// description, which reader and card, which steps, how it ended — and never
// a field value, PIN or key. Each record is fsynced before the job's result
// is reported. The agent, `cardwright batch` and the metrics all see a job
// as a Record.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Record is one finished job.
type Record struct {
	Seq     uint64    `json:"seq"`     // set by the log: 1, 2, … across rotations
	Time    time.Time `json:"time"`    // when the job finished (UTC)
	Started time.Time `json:"started"` // when it was accepted
	// Via is how the job came: "ws" (a portal over the WebSocket),
	// "cardjob" (POST /CardJob), "batch" (cardwright batch), "cli".
	Via    string `json:"via"`
	Origin string `json:"origin,omitempty"` // the checked Origin of the page, or of the CardJob caller
	Job    string `json:"job,omitempty"`    // the caller's job id (or batch record number)
	// Description is "sha256:" and the hex SHA-256 of the .dsc text or
	// .dsz bytes the job ran.
	Description string `json:"description"`
	Reader      string `json:"reader,omitempty"`
	ICCSN       string `json:"iccsn,omitempty"` // hex, as read when the job began
	ATR         string `json:"atr,omitempty"`   // hex
	Steps       []Step `json:"steps,omitempty"`
	Result      string `json:"result"` // "ok" or the error code
	// Prev is the hash of the record before (of the last record of the
	// previous file after a rotation; empty for the first record ever);
	// Hash is this record's, over its JSON without Hash.
	Prev string `json:"prev"`
	Hash string `json:"hash,omitempty"`
}

// Step is one step the job ran, with its timing (runner.StepTime).
type Step struct {
	Name string  `json:"name"`
	Kind string  `json:"kind"`
	MS   float64 `json:"ms"`
	// WaitedMS is the part of MS spent waiting for a person or the portal.
	WaitedMS float64 `json:"waited_ms,omitempty"`
	OK       bool    `json:"ok"`
}

// Digest is the Description of a job's description bytes.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}
