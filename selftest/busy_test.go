package selftest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// busyStation is station with three tokens: t1 stands for R1's card by
// [tokens], t2 is the card in R2 (its slot description names the reader,
// as card middleware writes it), t3 stands for no reader (an HSM key).
func busyStation(t *testing.T, keygens *int) (Options, Ports) {
	o, p := station(t)
	p.Modules = fakeModules{"/lib/hsm.so": {toks: []Token{
		fakeToken{label: "t1", slot: "SoftHSM slot ID 0x1", keygens: keygens},
		fakeToken{label: "t2", slot: "R2", keygens: keygens},
		fakeToken{label: "t3", slot: "SoftHSM slot ID 0x3", keygens: keygens},
	}}}
	return o, p
}

// TestKeygenBusyReader: inside the agent, a token whose reader a job holds
// is not touched — by [tokens] (exact name or pattern) or by its slot
// description, a reader name longer than CK_SLOT_INFO's 64 bytes too —
// and the others are probed.
func TestKeygenBusyReader(t *testing.T) {
	n := 0
	o, p := busyStation(t, &n)
	o.InAgent, o.Keygen = true, KeygenEC
	busy := map[string]bool{"R1": true, "R2": true}
	var asked []string
	o.Busy = func(r string) bool { asked = append(asked, r); return busy[r] }
	r := Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, Skip, `busy with a job (reader "R1")`)
	want(t, r, `keygen "t2"`, Skip, `busy with a job (reader "R2")`)
	want(t, r, `keygen "t3"`, OK, "EC P-256 key pair")
	if n != 1 {
		t.Errorf("%d key generations, want 1 (t3)", n)
	}
	if !r.OK() {
		t.Errorf("a busy token fails the report: %s", r.Summary())
	}
	for _, a := range asked {
		if a == "Hello" || strings.HasPrefix(a, "SoftHSM") {
			t.Errorf("asked whether %q is busy: it is no reader of these tokens", a)
		}
	}

	// Idle: all three.
	busy, n = nil, 0
	r = Run(context.Background(), o, p)
	for _, l := range []string{"t1", "t2", "t3"} {
		want(t, r, `keygen "`+l+`"`, OK, "EC P-256")
	}
	if n != 3 {
		t.Errorf("idle: %d key generations, want 3", n)
	}

	// A [tokens] pattern, and a reader name cut in the slot description.
	long := "Very Long Vendor Name Contactless And Contact Dual Interface Reader [CCID Interface] (1234) 00 00"
	rs := p.Readers.(fakeReaders)
	rs.list = append(rs.list, Reader{Name: "PinPad 01 00"}, Reader{Name: long})
	p.Readers = rs
	o.Tokens = []TokenRef{{Reader: "^PinPad", Match: regexp.MustCompile("^PinPad").MatchString, Module: "/lib/hsm.so", Label: "t1"}}
	p.Modules = fakeModules{"/lib/hsm.so": {toks: []Token{
		fakeToken{label: "t1", keygens: &n},
		fakeToken{label: "t2", slot: long[:64], keygens: &n},
	}}}
	busy, n = map[string]bool{"PinPad 01 00": true, long: true}, 0
	r = Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, Skip, `busy with a job (reader "PinPad 01 00")`)
	want(t, r, `keygen "t2"`, Skip, `busy with a job (reader "`+long+`")`)
	if n != 0 {
		t.Errorf("%d key generations on busy tokens", n)
	}
}

// TestKeygenTokenLock: the probe holds the token's lock (module's resolved
// path and serial) around the key generation; a token whose lock is held
// (a sign operation) is skipped without waiting.
func TestKeygenTokenLock(t *testing.T) {
	n := 0
	o, p := busyStation(t, &n)
	o.InAgent, o.Keygen = true, KeygenEC
	var locked, unlocked []string
	o.TryLock = func(module, serial string) (func(), bool) {
		locked = append(locked, module+" "+serial)
		if len(locked) == 2 { // t2, the second token
			return nil, false
		}
		return func() { unlocked = append(unlocked, module+" "+serial) }, true
	}
	r := Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, OK, "EC P-256")
	want(t, r, `keygen "t2"`, Skip, "busy with a certificate or sign operation")
	want(t, r, `keygen "t3"`, OK, "EC P-256")
	if n != 2 || len(locked) != 3 || len(unlocked) != 2 || locked[0] != "/real/hsm.so 0001" {
		t.Errorf("%d key generations, locked %q, unlocked %q", n, locked, unlocked)
	}
}

// TestKeygenAgentOptIn: the agent's self-test generates nothing unless
// asked (Keygen off inside the agent says how to ask).
func TestKeygenAgentOptIn(t *testing.T) {
	n := 0
	o, p := busyStation(t, &n)
	o.InAgent, o.Keygen = true, KeygenOff
	r := Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, Skip, "not asked for (/v1/health?full=1&keygen=1 generates)")
	if n != 0 {
		t.Errorf("%d key generations", n)
	}
}

// TestKeygenBesideAgent: the CLI beside a running agent with jobs leaves
// every token that stands for a reader alone (it cannot see which readers
// the jobs hold) and probes the others; beside an idle agent it probes
// all.
func TestKeygenBesideAgent(t *testing.T) {
	jobs := "2"
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" || r.URL.RawQuery != "" {
			t.Errorf("asked %s", r.URL)
		}
		w.Write([]byte(`{"status":"ok","agent":"cardwright/1.2.3","jobs":` + jobs + `}`))
	}))
	defer agent.Close()
	n := 0
	o, p := busyStation(t, &n)
	o.Listen = strings.TrimPrefix(agent.URL, "http://")
	r := Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, Skip, `the running agent (cardwright/1.2.3) has 2 jobs running and this process cannot see which readers they hold`)
	want(t, r, `keygen "t2"`, Skip, `(reader "R2")`)
	want(t, r, `keygen "t3"`, OK, "EC P-256")
	if n != 1 {
		t.Errorf("%d key generations, want 1", n)
	}
	jobs, n = "0", 0
	r = Run(context.Background(), o, p)
	want(t, r, `keygen "t1"`, OK, "EC P-256")
	if n != 3 {
		t.Errorf("idle agent: %d key generations, want 3", n)
	}
}
