package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// padJob logs in on the PIN pad and has the token make a key pair and
// take its certificate.
const padJob = `[Encoding]
Type=1024,Chip
[Fields]
CARD_SERIAL=
[Description]
PKCS11LibraryLinux=/usr/lib/softhsm/libsofthsm2.so
PIN=!FROM_PROTECTED_AUTHENTICATION_PATH
[Application_C]
CertTempl=PinPad
KeyType=EC
KeySize=256
CardSerialNumberField=CARD_SERIAL
`

// TestRunPinPad: a PIN from the PIN pad (!FROM_PROTECTED_AUTHENTICATION_PATH)
// logs in to a token that has one, on a headless runner with no prompter:
// the portal is told while the pad waits, the card is identified again
// after it; a wrong PIN, the pad's cancel key, a card swapped during the
// wait, and a token without a pad each end with their code.
func TestRunPinPad(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	if res := run.Run(context.Background(), demoJob(t, nil), nil); res.Err != nil {
		t.Fatalf("demo: %+v", res.Err)
	}
	tok := r.tokens.Token("R0", runner.LocationDefault)
	certs := len(tok.Certificates())
	run.Deps.Headless = true // no dialog needed for a pad
	var notes []string
	job := func() *runner.Job {
		return &runner.Job{Name: "pad.dsc", Description: []byte(padJob), Fields: map[string]secret.Value{"CARD_SERIAL": secret.New("CW-PAD")},
			PromptNotify: func(kind, state, reader string) { notes = append(notes, kind+" "+state+" "+reader) }}
	}
	type typed struct {
		pin    string
		err    error
		during func()
	}
	var pad typed
	var pads []string
	r.tokens.Pad = func(reader string, so bool) (secret.Value, error) {
		pads = append(pads, fmt.Sprintf("%s so=%v after %q", reader, so, notes))
		if pad.during != nil {
			pad.during()
		}
		return secret.New(pad.pin), pad.err
	}

	for _, tc := range []struct {
		name  string
		pad   typed
		code  api.Code
		inMsg string
		certs int // new certificates
	}{
		{"right PIN", typed{pin: testPIN}, "", "", 1},
		{"wrong PIN", typed{pin: "000000"}, api.CodePinIncorrect, "2 tries left", 0},
		{"cancel on the pad", typed{err: fmt.Errorf("the cancel key: %w", prompt.ErrRefused)}, api.CodePromptRefused, "", 0},
		{"card swapped while the pad waits", typed{pin: testPIN, during: func() {
			r.readers.Put("R0", memcard.New(memcard.Config{Serial: []byte{0xBE, 0xEF}}))
		}}, api.CodeCardChanged, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes, pads, pad = nil, nil, tc.pad
			res := run.Run(context.Background(), job(), nil)
			if tc.code == "" && res.Err != nil || tc.code != "" && (res.Err == nil || res.Err.Code != tc.code || !strings.Contains(res.Err.Message, tc.inMsg)) {
				t.Fatalf("result %+v, want code %q", res.Err, tc.code)
			}
			noSecrets(t, res)
			if want := []string{`R0 so=false after ["FROM_PROTECTED_AUTHENTICATION_PATH waiting R0"]`}; !slices.Equal(pads, want) {
				t.Errorf("pad reads %q, want %q", pads, want)
			}
			if want := "FROM_PROTECTED_AUTHENTICATION_PATH waiting R0,FROM_PROTECTED_AUTHENTICATION_PATH done R0"; strings.Join(notes, ",") != want {
				t.Errorf("notifications %q, want %q", notes, want)
			}
			if got := len(tok.Certificates()); got != certs+tc.certs {
				t.Errorf("%d certificates on the token, want %d", got, certs+tc.certs)
			}
			certs = len(tok.Certificates())
		})
	}
	t.Run("token without a pad", func(t *testing.T) {
		notes, pads = nil, nil
		r.tokens.Pad = nil
		calls := len(r.tokens.Calls())
		res := run.Run(context.Background(), job(), nil)
		if res.Err == nil || res.Err.Code != api.CodeNotSupported || res.Err.Step != "validate" || res.Err.Key != "PIN" {
			t.Fatalf("result %+v, want not_supported in validate at PIN", res.Err)
		}
		for _, c := range r.tokens.Calls()[calls:] {
			if c != "Open" && c != "Info" && c != "Logout" && c != "Close" {
				t.Errorf("token call %s before the refusal", c)
			}
		}
		if len(notes) > 0 {
			t.Errorf("notified %q without a pad", notes)
		}
	})
}

// A PIN-pad credential whose value the job needs (a token it initialises, a
// card profile it runs) is refused before any card I/O.
func TestRunPinPadValueNeeded(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	for _, tc := range []struct{ name, from, to string }{
		{"card profile and C_InitPIN", "PIN=PIN_FIELD", "PIN=!FROM_PROTECTED_AUTHENTICATION_PATH"},
		{"C_InitToken", "InitialPUK=PUK_FIELD", "InitialPUK=!FROM_PROTECTED_AUTHENTICATION_PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := demoJob(t, nil)
			j.Description = []byte(strings.Replace(string(j.Description), tc.from, tc.to, 1))
			res := run.Run(context.Background(), j, nil)
			if res.Err == nil || res.Err.Code != api.CodeNotSupported || res.Err.Step != "validate" || res.Err.Line == 0 {
				t.Fatalf("result %+v, want not_supported in validate with a line", res.Err)
			}
			if calls := r.tokens.Calls(); len(calls) > 0 {
				t.Errorf("token calls %v", calls)
			}
		})
	}
}
