package runner_test

import (
	"context"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
)

// TestExpectSerial: a job for a given card (Job.ExpectSerial, as batch
// sends after reading the card) refuses another card in the reader with
// card_changed at "select", before any step writes to it; the card it is
// for runs.
func TestExpectSerial(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	j := demoJob(t, nil)
	j.Reader, j.ExpectSerial = "R0", []byte{0xCA, 0xFE, 0x01} // R0 holds CAFE00
	res := run.Run(context.Background(), j, nil)
	if res.Err == nil || res.Err.Code != api.CodeCardChanged || res.Err.Step != "select" {
		t.Fatalf("another card: %+v", res.Err)
	}
	for _, e := range r.readers.Card("R0").Transcript() {
		if e.Command[1] != 0xCA { // GET DATA (the serial) only
			t.Fatalf("the refused card got % X", e.Command)
		}
	}
	j = demoJob(t, nil)
	j.Reader, j.ExpectSerial = "R0", []byte{0xCA, 0xFE, 0x00}
	if res := run.Run(context.Background(), j, nil); res.Err != nil {
		t.Fatalf("the card the job is for: %+v", res.Err)
	}
}
