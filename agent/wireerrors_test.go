package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

// goInternals are words of Go's decoding errors that mean nothing to a
// portal's developer.
var goInternals = []string{"Go ", "struct", "unmarshal", "api.", "Envelope", "json:", "int64", "[]"}

func checkWireWording(t *testing.T, msg string) {
	t.Helper()
	for _, w := range goInternals {
		if strings.Contains(msg, w) {
			t.Errorf("message %q quotes Go internals (%q)", msg, w)
		}
	}
}

// TestWireErrorsNameTheField: a message whose field has the wrong JSON type
// is answered (bad_request, or a close with invalid payload for the
// envelope itself) with the field as spelled on the wire and the type it
// takes, never Go's struct or type names.
func TestWireErrorsNameTheField(t *testing.T) {
	ta := startAgent(t)
	t.Run("envelope", func(t *testing.T) {
		for frame, want := range map[string]string{
			`{"type":"hello","id":5,"versions":[1]}`: `field "id" must be a string, not a number`,
			`{"type":true,"id":"x"}`:                 `field "type" must be a string, not a boolean`,
			`"hello"`:                                `a message is a JSON object, not a string`,
			`{"type":"hello",}`:                      `not valid JSON at byte 17`,
		} {
			raw := rawDial(t, ta, testOrigin)
			raw.send(t, frame)
			raw.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			var ce *websocket.CloseError
			for {
				if _, _, err := raw.ws.ReadMessage(); err != nil {
					if !errors.As(err, &ce) {
						t.Fatalf("%s: connection ended without a close frame: %v", frame, err)
					}
					break
				}
			}
			if ce.Code != websocket.CloseInvalidFramePayloadData || !strings.Contains(ce.Text, want) {
				t.Errorf("%s: close %d %q, want %d with %q", frame, ce.Code, ce.Text, websocket.CloseInvalidFramePayloadData, want)
			}
			checkWireWording(t, ce.Text)
		}
	})
	t.Run("messages", func(t *testing.T) {
		raw := rawDial(t, ta, testOrigin)
		raw.hello(t)
		for frame, want := range map[string]string{
			`{"type":"hello","id":"h2","versions":"1"}`:                        `field "versions" must be an array of integers, not a string`,
			`{"type":"job","id":"j1","description":"x","fields":{"PIN":1234}}`: `field "fields" must be an object of strings; one of its values is a number`,
			`{"type":"job","id":"j2","description":"x","fields":["PIN"]}`:      `field "fields" must be an object of strings, not an array`,
			`{"type":"job","id":"j3","description":"x","secret":"PIN1"}`:       `field "secret" must be an array of strings, not a string`,
			`{"type":"readers","id":"r1","subscribe":"yes"}`:                   `field "subscribe" must be true or false, not a string`,
			`{"type":"ack","id":"a1","job":7}`:                                 `field "job" must be a string, not a number`,
		} {
			raw.send(t, frame)
			m := raw.read(t)
			msg, _ := m["message"].(string)
			if m["type"] != api.TypeError || m["code"] != string(api.CodeBadRequest) || !strings.Contains(msg, want) {
				t.Errorf("%s: got %v, want bad_request with %q", frame, m, want)
			}
			checkWireWording(t, msg)
		}
	})
}

// TestHelloUnknownSessionIsNotAdopted: a hello with a well-formed session
// token the agent never issued gets a fresh token; a token it issued (a
// live session, or one with jobs in the journal after a restart) resumes.
func TestHelloUnknownSessionIsNotAdopted(t *testing.T) {
	dir := t.TempDir()
	ta := startAgentIn(t, dir)
	ctx := ctxT(t)
	const chosen = "chosen-by-the-page-0123456789"
	c := ta.dial(client.Options{Session: chosen})
	issued := c.Welcome.Session
	if issued == chosen || len(issued) < 16 {
		t.Fatalf("welcome session %q for an unknown token %q: want a fresh one", issued, chosen)
	}
	c2 := ta.dial(client.Options{Session: chosen}) // still unknown: another fresh one
	if s := c2.Welcome.Session; s == chosen || s == issued {
		t.Fatalf("second unknown hello: session %q", s)
	}
	// The issued token resumes while its connection is open (the old
	// connection is closed), and after a restart from the journal.
	res, err := c.Run(ctx, &api.Job{Description: "x"}, nil, nil)
	if err != nil || !res.OK {
		t.Fatalf("job: %+v %v", res, err)
	}
	c3 := ta.dial(client.Options{Session: issued})
	if c3.Welcome.Session != issued {
		t.Fatalf("live session %q resumed as %q", issued, c3.Welcome.Session)
	}
	c3.Close()
	c.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ta.srv.Shutdown(sctx)
	ta.journal.Close()

	tb := startAgentIn(t, dir)
	c4 := tb.dial(client.Options{Session: issued})
	if c4.Welcome.Session != issued || c4.Welcome.Pending != 1 {
		t.Fatalf("after a restart: session %q pending %d, want %q and 1", c4.Welcome.Session, c4.Welcome.Pending, issued)
	}
}
