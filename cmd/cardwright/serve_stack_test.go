package main

import (
	"context"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// iccsnJob reads the card serial number into ICCSN and touches nothing
// else (no profile, no token).
const iccsnJob = "[Encoding]\nType=1024,Chip\n\n[Fields]\nICCSN=\n\n[Description]\niccsnfield=ICCSN\n"

// TestServePCSCDRestartOnStack: pcscd restarts under a running `cardwright
// serve` (real runner). The agent recovers by itself: a subscribed portal
// sees the own card go and come back, and the next job on the same
// connection reads the card.
func TestServePCSCDRestartOnStack(t *testing.T) {
	e := newStackEnv(t)
	url, _, logs := e.serve("--allow-origin", memOrigin)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: memOrigin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readers, events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range readers {
		found = found || r.Name == e.own[0] && r.Card
	}
	if !found {
		t.Fatalf("%q with a card not in %+v", e.own[0], readers)
	}
	serial := e.s.Get(t, "SERIAL_OWN_1")
	run := func(when string) {
		t.Helper()
		res, err := c.Run(ctx, &api.Job{Description: iccsnJob, Reader: e.own[0]}, nil, nil)
		if err != nil || !res.OK || res.Fields["ICCSN"] != serial {
			t.Fatalf("job %s: %+v %v\n%s", when, res, err, logs())
		}
		if err := c.Ack(ctx, res.ID); err != nil {
			t.Fatal(err)
		}
	}
	run("before the restart")

	e.s.RestartPCSCD(t)
	var removed, inserted bool
	for !inserted {
		select {
		case ev := <-events:
			if ce, ok := ev.(*api.CardEvent); ok && ce.Reader == e.own[0] {
				switch ce.Event {
				case api.EventCardRemoved:
					removed = true
				case api.EventCardInserted:
					inserted = removed
				}
			}
		case <-ctx.Done():
			t.Fatalf("no card removed then inserted for %q after the restart (removed %v)\n%s", e.own[0], removed, logs())
		}
	}
	run("after the restart")
}
