package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/config"
)

// The examples of docs/config.md and docs/protocol.md are checked against
// the program, so that the pages and the program cannot drift apart.

var fence = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

type docBlock struct{ lang, text string }

func docBlocks(t *testing.T, name string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
		out = append(out, docBlock{m[1], m[2]})
	}
	return out
}

// TestConfigDocExamples: every ```ini block of docs/config.md is read by the
// real parser as cardwright.cfg; one followed by a ```text block must fail
// with exactly that text, every other must load.
func TestConfigDocExamples(t *testing.T) {
	blocks := docBlocks(t, "config.md")
	n := 0
	for i, b := range blocks {
		if b.lang != "ini" {
			continue
		}
		n++
		_, err := config.Parse("cardwright.cfg", []byte(b.text))
		if i+1 < len(blocks) && blocks[i+1].lang == "text" {
			want := strings.TrimSuffix(blocks[i+1].text, "\n")
			if err == nil || err.Error() != want {
				t.Errorf("block %d:\n%s\ngives %v\nwant\n%s", n, b.text, err, want)
			}
		} else if err != nil {
			t.Errorf("block %d:\n%s\ndoes not load: %v", n, b.text, err)
		}
	}
	if n < 3 {
		t.Fatalf("%d ini blocks in docs/config.md", n)
	}
}

// protocolTypes maps a message type to its Go type.
var protocolTypes = map[string]any{
	api.TypeHello: api.Hello{}, api.TypePair: api.Pair{}, api.TypeReaders: api.Readers{}, api.TypeJob: api.Job{},
	api.TypeCancel: api.Cancel{}, api.TypeAck: api.Ack{}, api.TypeAnswer: api.Answer{}, api.TypeCertificates: api.Certificates{},
	api.TypeSign: api.Sign{}, api.TypeAuthenticate: api.Authenticate{}, api.TypeWelcome: api.Welcome{}, api.TypePairing: api.Pairing{},
	api.TypePaired: api.Paired{}, api.TypeReaderList: api.ReaderList{}, api.TypeReaderEvent: api.ReaderEvent{},
	api.TypeCardEvent: api.CardEvent{}, api.TypeAccepted: api.Accepted{}, api.TypeOK: api.OK{}, api.TypeError: api.Error{},
	api.TypeProgress: api.Progress{}, api.TypePrompt: api.Prompt{}, api.TypeRequest: api.Request{}, api.TypeResult: api.Result{},
	api.TypeCertificateList: api.CertificateList{}, api.TypeSignature: api.Signature{}, api.TypeAuthentication: api.Authentication{},
	api.TypeSoftToken: api.SoftToken{}, api.TypeSoftTokenStored: api.SoftTokenStored{},
}

var clientTypes = map[string]bool{api.TypeHello: true, api.TypePair: true, api.TypeReaders: true, api.TypeJob: true,
	api.TypeCancel: true, api.TypeAck: true, api.TypeAnswer: true, api.TypeCertificates: true, api.TypeSign: true, api.TypeAuthenticate: true}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// shape is the sorted key paths of a JSON value; the keys of the data maps
// fields, secrets and files, and array elements beyond the first, are
// values, not shape.
func shape(v any, path string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := path + "." + k
			out[p] = true
			if k != "fields" && k != "secrets" && k != "files" {
				shape(e, p, out)
			}
		}
	case []any:
		for _, e := range x {
			shape(e, path+"[]", out)
		}
	}
}

func shapeOf(b []byte) string {
	var v any
	json.Unmarshal(b, &v)
	m := map[string]bool{}
	shape(v, "", m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// TestProtocolDocExamples: every ```json block of docs/protocol.md decodes
// into its Go type with no unknown field and encodes back to the same JSON.
// Then the client examples are sent to real agents — `hello` to `cardwright
// serve` with its default limits, the others to the agent with the real
// runner over in-memory cards — and the agent's frames for that id must be
// the documented ones that follow the example, up to the next client
// example: same type and shape, and the same code, message (errors), ok,
// version and limits. Examples whose replies need a running job, a local
// user or tokens (answer, cancel, ack, pair, certificates, sign,
// authenticate) and events are checked by the round trip only.
func TestProtocolDocExamples(t *testing.T) {
	var msgs []json.RawMessage
	for _, b := range docBlocks(t, "protocol.md") {
		if b.lang == "json" {
			msgs = append(msgs, json.RawMessage(strings.TrimSpace(b.text)))
		}
	}
	var env []api.Envelope
	for _, m := range msgs {
		var e api.Envelope
		if err := json.Unmarshal(m, &e); err != nil {
			t.Fatalf("%v: %s", err, m)
		}
		env = append(env, e)
		proto, ok := protocolTypes[e.Type]
		if !ok {
			t.Errorf("no Go type for %q: %s", e.Type, m)
			continue
		}
		v := reflect.New(reflect.TypeOf(proto)).Interface()
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("%s does not decode into %T: %v", m, v, err)
			continue
		}
		back, _ := json.Marshal(v)
		if !jsonEqual(back, m) {
			t.Errorf("round trip through %T changes\n%s\ninto\n%s", v, m, back)
		}
	}

	serveURL, _, _, _ := startServe(t, "--fake-runner", "--config", "/dev/null", "--listen", "127.0.0.1:0",
		"--journal", t.TempDir(), "--allow-origin", memOrigin)
	ma := startMemAgent(t, 1)
	checked := 0
	for i, e := range env {
		if !clientTypes[e.Type] {
			continue
		}
		var want []json.RawMessage
		for j := i + 1; j < len(env) && !clientTypes[env[j].Type]; j++ {
			if env[j].ID == e.ID && (env[j].Type == api.TypeWelcome || env[j].Type == api.TypeReaderList ||
				env[j].Type == api.TypeAccepted || env[j].Type == api.TypeError || env[j].Type == api.TypeResult) {
				want = append(want, msgs[j])
			}
		}
		switch e.Type {
		case api.TypeHello, api.TypeReaders, api.TypeJob:
		default:
			continue
		}
		if len(want) == 0 {
			continue
		}
		url := ma.url
		if e.Type == api.TypeHello {
			url = serveURL
		}
		ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {memOrigin}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != api.TypeHello {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":"doc-hello","versions":[1]}`))
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			ws.ReadMessage()
		}
		ws.WriteMessage(websocket.TextMessage, msgs[i])
		for _, w := range want {
			got := readFor(t, ws, e.ID)
			if got == nil {
				t.Errorf("%s: no reply, want %s", msgs[i], w)
				break
			}
			compareDoc(t, msgs[i], w, got)
		}
		ws.Close()
		checked++
	}
	t.Logf("%d client examples checked against the agent", checked)
	if checked < 4 {
		t.Fatalf("only %d client examples checked against the agent", checked)
	}
}

// readFor reads frames until one for id that is not a job event.
func readFor(t *testing.T, ws *websocket.Conn, id string) []byte {
	for {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			return nil
		}
		var e api.Envelope
		json.Unmarshal(b, &e)
		switch e.Type {
		case api.TypeProgress, api.TypePrompt, api.TypeRequest, api.TypeCardEvent, api.TypeReaderEvent:
			continue
		}
		if e.ID == id || e.Type == api.TypeError {
			return b
		}
	}
}

func compareDoc(t *testing.T, sent, want, got []byte) {
	t.Helper()
	var w, g map[string]any
	json.Unmarshal(want, &w)
	json.Unmarshal(got, &g)
	if !shapeFits(shapeOf(got), shapeOf(want)) {
		t.Errorf("for %s the agent sent\n%s\nthe docs show\n%s\n(shape %s vs %s)", sent, got, want, shapeOf(got), shapeOf(want))
		return
	}
	for _, k := range []string{"type", "id", "code", "ok", "version", "limits"} {
		if !reflect.DeepEqual(w[k], g[k]) {
			t.Errorf("for %s: %s is %v, the docs show %v", sent, k, g[k], w[k])
		}
	}
	if w["type"] == api.TypeError && w["message"] != g["message"] {
		t.Errorf("for %s: message %q, the docs show %q", sent, g["message"], w["message"])
	}
	if we, ok := w["error"].(map[string]any); ok {
		ge, _ := g["error"].(map[string]any)
		if !reflect.DeepEqual(we, ge) {
			t.Errorf("for %s: error %v, the docs show %v", sent, ge, we)
		}
	}
}

// shapeFits: the same key paths, except that paths inside arrays (a reader
// list, a certificate list) may be missing when the agent's array is empty.
func shapeFits(got, want string) bool {
	g, w := map[string]bool{}, map[string]bool{}
	for _, k := range strings.Fields(got) {
		g[k] = true
	}
	for _, k := range strings.Fields(want) {
		w[k] = true
	}
	for k := range g {
		if !w[k] {
			return false
		}
	}
	for k := range w {
		if !g[k] && !strings.Contains(k, "[]") {
			return false
		}
	}
	return true
}
