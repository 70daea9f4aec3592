package agent_test

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api/schema"
	"github.com/gorilla/websocket"
)

// FuzzCardJob posts arbitrary bodies to POST /CardJob: the agent never
// panics, answers one of its documented statuses, and the body it answers
// is well-formed XML.
func FuzzCardJob(f *testing.F) {
	d := dsz(f, "[Description]\nName=fuzz\n")
	f.Add(`<card_job id="1"><reader>Fake Reader 0</reader><applications><application name="a">` + d +
		`</application></applications><text_fields><text_field name="Echo">x</text_field><text_field name="ICCSN" read="true"/></text_fields></card_job>`)
	f.Add(`<cancel_job id="1"/>`)
	f.Add(`<card_job><applications/></card_job>`)
	f.Add(`<?xml version="1.0"?><card_job id="&amp;"><applications><application>!!</application></applications></card_job>`)
	f.Add(`<other/>`)
	f.Add(``)
	ta := startAgent(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "http://"+ta.addr+"/CardJob", strings.NewReader(body))
		req.Host = ta.addr
		req.Header.Set("Origin", testOrigin)
		rec := httptest.NewRecorder()
		ta.srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("HTTP %d for %q", rec.Code, body)
		}
		dec := xml.NewDecoder(strings.NewReader(rec.Body.String()))
		for {
			_, err := dec.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("answer is not well-formed XML (%v):\n%s", err, rec.Body.String())
				}
				break
			}
		}
	})
}

// FuzzFrame sends one arbitrary frame after hello on a fresh connection:
// every frame the agent sends back matches its JSON Schema, and the agent
// keeps serving (a later connection is welcomed).
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"readers","id":"1"}`,
		`{"type":"job","id":"2","description":"[Description]\nName=x\n","fields":{"Echo":"a"}}`,
		`{"type":"ack","id":"3","job":"nope"}`,
		`{"type":"cancel","id":"4","job":""}`,
		`{"type":"sign","id":"5","data":"AAAA"}`,
		`{"type":"answer","id":"6","job":"x","request":"1","certificate":"%%"}`,
		`{"type":"hello","id":"7","versions":[99]}`,
		`{"type":"pair","id":"8"}`,
		`{"id":9}`, `[]`, `null`, `{`, ``,
	} {
		f.Add(s)
	}
	ta := startAgent(f)
	dial := func(t *testing.T) *websocket.Conn {
		h := http.Header{}
		h.Set("Origin", testOrigin)
		ws, _, err := websocket.DefaultDialer.Dial(ta.url, h)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return ws
	}
	f.Fuzz(func(t *testing.T, frame string) {
		ws := dial(t)
		defer ws.Close()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":"h","versions":[1]}`)); err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		// Read what comes within a short while; the connection may close.
		for {
			ws.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			_, b, err := ws.ReadMessage()
			if err != nil {
				break
			}
			if err := schema.Validate(b); err != nil {
				t.Fatalf("after %q the agent sent a frame outside its schema: %v\n%s", frame, err, b)
			}
		}
		again := dial(t)
		defer again.Close()
		again.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":"h","versions":[1]}`))
		again.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, b, err := again.ReadMessage(); err != nil || !strings.Contains(string(b), `"welcome"`) {
			t.Fatalf("after %q the agent no longer welcomes: %v %s", frame, err, b)
		}
	})
}
