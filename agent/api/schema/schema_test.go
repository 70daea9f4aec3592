package schema

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
)

// TestDocExamples checks every JSON example in docs/protocol.md against
// its schema, and that every message type has at least one example.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		if err := Validate(b[1]); err != nil {
			t.Errorf("%v\n%s", err, b[1])
		}
		var env api.Envelope
		json.Unmarshal(b[1], &env)
		seen[env.Type] = true
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("docs/protocol.md has no example of %q", typ)
		}
	}
	if len(Types()) != 28 {
		t.Errorf("%d schemas, want 28", len(Types()))
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct{ frame, want string }{
		{`[]`, "not a JSON object"},
		{`{"type":"nope","id":"1"}`, "no schema"},
		{`{"type":"../x","id":"1"}`, "no schema"},
		{`{"type":"hello","id":"1"}`, `missing "versions"`},
		{`{"type":"hello","id":"","versions":[1]}`, "shorter than"},
		{`{"type":"hello","id":"1","versions":[1.5]}`, "want integer"},
		{`{"type":"hello","id":"1","versions":[1],"extra":1}`, `unknown property "extra"`},
		{`{"type":"hello","id":"1","versions":[1],"session":"short"}`, "does not match"},
		{`{"type":"job","id":"1","fields":{"PIN":1234}}`, "$.fields.PIN: want string"},
		{`{"type":"job","id":"1","dsz":"!!"}`, "does not match"},
		{`{"type":"result","id":"1","ok":false,"error":{"code":"oops","message":"x"}}`, "is not one of"},
		{`{"type":"result","id":"1"}`, `missing "ok"`},
		{`{"type":"progress","id":"1","step":"s","n":-1,"total":2}`, "less than 0"},
		{`{"type":"prompt","id":"1","kind":"pin","state":"maybe"}`, "is not one of"},
		{`{"type":"reader_list","id":"1","readers":[{"name":"r"}]}`, `$.readers[0]: missing "card"`},
		{`{"type":"error","code":"busy"}`, `missing "message"`},
	}
	for _, tc := range tests {
		err := Validate([]byte(tc.frame))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%s) = %v, want %q", tc.frame, err, tc.want)
		}
	}
}

// TestGoTypes: what the Go types marshal to fits the schemas.
func TestGoTypes(t *testing.T) {
	yes := true
	msgs := []any{
		&api.Hello{Type: api.TypeHello, ID: "1", Versions: []int{1}},
		&api.Welcome{Type: api.TypeWelcome, ID: "1", Version: 1, Agent: "cardwright/x", Session: "s"},
		&api.Pair{Type: api.TypePair, ID: "1"},
		&api.Pairing{Type: api.TypePairing, ID: "1", Code: "123456", Origin: "https://a.example"},
		&api.Paired{Type: api.TypePaired, ID: "1", Origin: "https://a.example"},
		&api.Readers{Type: api.TypeReaders, ID: "1", Subscribe: &yes},
		&api.ReaderList{Type: api.TypeReaderList, ID: "1", Readers: []api.Reader{{Name: "r", Card: true, ATR: "3B00"}}},
		&api.ReaderEvent{Type: api.TypeReaderEvent, ID: "1", Event: api.EventReaderAdded, Reader: "r"},
		&api.CardEvent{Type: api.TypeCardEvent, ID: "1", Event: api.EventCardRemoved, Reader: "r"},
		&api.Job{Type: api.TypeJob, ID: "1", Description: "d", Fields: map[string]string{"a": "b"}},
		&api.Accepted{Type: api.TypeAccepted, ID: "1"},
		&api.Cancel{Type: api.TypeCancel, ID: "1", Job: "j"},
		&api.Ack{Type: api.TypeAck, ID: "1", Job: "j"},
		&api.OK{Type: api.TypeOK, ID: "1"},
		&api.Error{Type: api.TypeError, Code: api.CodeBusy, Message: "m"},
		&api.Progress{Type: api.TypeProgress, ID: "1", Step: "s", N: 1, Total: 2},
		&api.Prompt{Type: api.TypePrompt, ID: "1", Kind: "pin", State: api.PromptWaiting},
		&api.Request{Type: api.TypeRequest, ID: "1", Request: "1", CSR: "AAAA"},
		&api.Answer{Type: api.TypeAnswer, ID: "1", Job: "j", Request: "1", Certificate: "AAAA"},
		&api.Result{Type: api.TypeResult, ID: "1", Error: &api.JobError{Code: api.CodeInterrupted, Message: "m", Line: 3}},
		&api.Certificates{Type: api.TypeCertificates, ID: "1"},
		&api.CertificateList{Type: api.TypeCertificateList, ID: "1", Certificates: []api.Certificate{{Token: "t", KeyID: "01", Certificate: "AAAA"}}},
		&api.Sign{Type: api.TypeSign, ID: "1", Data: "AAAA"},
		&api.Signature{Type: api.TypeSignature, ID: "1", Signature: "AAAA", Certificate: "AAAA"},
		&api.Authenticate{Type: api.TypeAuthenticate, ID: "1", Challenge: "AAAA"},
		&api.Authentication{Type: api.TypeAuthentication, ID: "1", Format: "cardwright-auth:1", Algorithm: "ES256", Signature: "AAAA", Certificate: "AAAA"},
	}
	for _, m := range msgs {
		b, _ := json.Marshal(m)
		if err := Validate(b); err != nil {
			t.Errorf("%v\n%s", err, b)
		}
	}
}

// TestCodesInSchema: the error schema lists exactly the codes of codes.go.
func TestCodesInSchema(t *testing.T) {
	src, err := os.ReadFile("../codes.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`Code = "([a-z_]+)"`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	raw, _ := Raw("error")
	var s struct {
		Properties struct {
			Code struct{ Enum []string } `json:"code"`
		} `json:"properties"`
	}
	json.Unmarshal(raw, &s)
	if strings.Join(s.Properties.Code.Enum, ",") != strings.Join(want, ",") {
		t.Fatalf("error.json codes differ from codes.go:\n%v\n%v", s.Properties.Code.Enum, want)
	}
}
