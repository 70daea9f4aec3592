package runner_test

import (
	"context"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// dryRig is a runner whose readers, token and issuer count their use: a
// dry run must make none.
func dryRig(t testing.TB) (*rig, *countingReaders, *runner.Runner) {
	r := newRig(t, "R0")
	cr := &countingReaders{Readers: r.readers}
	r.engine.Readers = cr
	return r, cr, demoRunner(t, r)
}

// untouched fails t if the dry run reached a reader, the token or the
// issuer.
func untouched(t *testing.T, r *rig, cr *countingReaders) {
	t.Helper()
	if n := cr.n.Load(); n != 0 {
		t.Errorf("%d reader calls", n)
	}
	if n := len(r.readers.Card("R0").Transcript()); n != 0 {
		t.Errorf("%d APDUs to the reader's card", n)
	}
	if c := r.tokens.Calls(); len(c) != 0 {
		t.Errorf("token calls: %v", c)
	}
	r.issuer.mu.Lock()
	defer r.issuer.mu.Unlock()
	if n := len(r.issuer.reqs); n != 0 {
		t.Errorf("%d issuer requests", n)
	}
}

// noPINs fails t if a transcript line holds one of the PINs, as ASCII or
// as hex of any case, also across the blanks of a line.
func noPINs(t *testing.T, transcript []string, pins ...string) {
	t.Helper()
	all := strings.ToUpper(strings.Join(transcript, "\n"))
	packed := strings.NewReplacer(" ", "", "\t", "", "\n", "").Replace(all)
	for _, p := range pins {
		for _, form := range []string{p, strings.ToUpper(hex.EncodeToString([]byte(p)))} {
			if strings.Contains(all, form) || strings.Contains(packed, form) {
				t.Errorf("transcript holds %q (%s):\n%s", p, form, strings.Join(transcript, "\n"))
			}
		}
	}
}

// TestDryRunDemo: the demo job's card part runs on an in-memory card with
// the real card profile engine — the erase and the profile — while the
// token and issuer steps are listed, not run; the transcript holds no PIN
// and nothing reaches a reader, the token or the issuer.
func TestDryRunDemo(t *testing.T) {
	r, cr, run := dryRig(t)
	card := memcard.New(memcard.Config{})
	var progress []runner.Progress
	res := run.DryRun(context.Background(), demoJob(t, nil), card, func(p runner.Progress) { progress = append(progress, p) })
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	want := []struct {
		name string
		ran  bool
		note string
	}{
		{"DeleteProfile", true, "PKCS#11 token erase: not run in a dry run"},
		{"InitToken", true, "PKCS#11 token (a stand-in token's C_InitToken, C_InitPIN, encrypted PINs): not run in a dry run"},
		{"Application_A", false, "PKCS#11 token and certificate issuer: not run in a dry run"},
		{"Application_B", false, "PKCS#11 token and certificate issuer: not run in a dry run"},
		{"ICCSN", true, ""},
		{"ClearFields", true, ""},
	}
	var got []string
	for _, s := range res.Steps {
		got = append(got, s.Name)
	}
	if len(res.Steps) != len(want) {
		t.Fatalf("steps %v, want %d", got, len(want))
	}
	for i, w := range want {
		s := res.Steps[i]
		if s.Name != w.name || s.Ran != w.ran || s.Note != w.note || s.File != "demo.dsc" || s.Line == 0 || s.Key == "" {
			t.Errorf("step %d = %+v, want %s ran=%v note %q", i+1, s, w.name, w.ran, w.note)
		}
	}
	if len(res.Transcript) == 0 || res.APDUs < len(res.Transcript) {
		t.Fatalf("%d APDUs, transcript %q", res.APDUs, res.Transcript)
	}
	if n := len(card.Transcript()); n != res.APDUs {
		t.Errorf("the card saw %d APDUs, the dry run counts %d", n, res.APDUs)
	}
	var profileLines int
	for _, l := range res.Transcript {
		if strings.HasPrefix(l, "InitToken: ") {
			profileLines++
		}
	}
	if profileLines == 0 || !strings.Contains(strings.Join(res.Transcript, "\n"), "secret bytes>") {
		t.Errorf("no masked profile lines in\n%s", strings.Join(res.Transcript, "\n"))
	}
	noPINs(t, res.Transcript, testPIN, testPUK)
	if len(progress) != len(res.Steps) {
		t.Errorf("%d progress events for %d steps", len(progress), len(res.Steps))
	}
	for i, p := range progress {
		if p.N != i+1 || p.Total != len(res.Steps) || p.Step != res.Steps[i].Name || p.Reader != "dry run" {
			t.Errorf("progress %d = %+v", i, p)
		}
	}
	untouched(t, r, cr)

	// Again on the same card: the profile's card is erased first
	// (MakeCardEraseable: anonymously) and laid out again.
	res2 := run.DryRun(context.Background(), demoJob(t, nil), card, nil)
	if res2.Err != nil {
		t.Fatalf("second dry run: %+v", res2.Err)
	}
	if len(res2.Transcript) <= len(res.Transcript) || !strings.Contains(strings.Join(res2.Transcript, "\n"), "DeleteProfile: 00E4") {
		t.Errorf("second dry run did not erase:\n%s", strings.Join(res2.Transcript, "\n"))
	}
	noPINs(t, res2.Transcript, testPIN, testPUK)
	untouched(t, r, cr)
}

// TestDryRunMasksScripts: an APDU script's PIN commands (VERIFY, CHANGE
// REFERENCE DATA, RESET RETRY COUNTER) and its lines that took a secret
// field are masked in the transcript; others are shown.
func TestDryRunMasksScripts(t *testing.T) {
	r, cr, run := dryRig(t)
	cpfSrc, err := os.ReadFile(demoDir + "/demo.cpf")
	if err != nil {
		t.Fatal(err)
	}
	pinHex := hex.EncodeToString([]byte(testPIN))
	pukHex := hex.EncodeToString([]byte(testPUK))
	script := strings.Join([]string{
		"00 CA 00 5A 00",
		"00 20 00 81 | ${<string>PIN_FIELD}",
		"00 20 00 01 | " + pinHex,
		"00 24 00 81 | " + pinHex + pukHex,
		"00 2C 00 81 | " + pukHex + pinHex,
		"00 20 00 81 00 00 06 " + pinHex, // extended Lc
		"00 D6 00 00 | ${<string>PUK_FIELD}",
	}, "\n") + "\n"
	j := demoJob(t, nil)
	j.Description = []byte(strings.Replace(string(j.Description), "[Application_A]", "ApduFile=pins.apdu\n\n[Application_A]", 1))
	j.Files = runner.Files{"demo.cpf": cpfSrc, "pins.apdu": []byte(script)}
	res := run.DryRun(context.Background(), j, memcard.New(memcard.Config{}), nil)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	var lines []string
	for _, l := range res.Transcript {
		if strings.HasPrefix(l, "ApduFile: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 7 {
		t.Fatalf("script lines:\n%s", strings.Join(res.Transcript, "\n"))
	}
	for i, w := range []string{"00CA005A00 -> ", "0020 <9 secret bytes>", "0020000106 <6 secret bytes>", "002400810E <14 secret bytes>",
		"002C00810E <14 secret bytes>", "00200081000006 <6 secret bytes>", "00D6 <11 secret bytes>"} {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	noPINs(t, res.Transcript, testPIN, testPUK)
	untouched(t, r, cr)
}

// countingPrompter answers every request with the PIN or the PUK, by
// label, and records the requests.
type countingPrompter struct {
	mu   sync.Mutex
	reqs []prompt.Request
}

func (p *countingPrompter) Ask(_ context.Context, r prompt.Request) (prompt.Answer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, r)
	v := testPIN
	if r.Label == "PUK" {
		v = testPUK
	}
	return prompt.Answer{PIN: secret.New(v)}, nil
}

// TestDryRunPrompts: a dry run asks for the PINs the description takes
// from dialogs through the Prompter, once per value, naming the dry run as
// the reader; a headless runner refuses the job at validation.
func TestDryRunPrompts(t *testing.T) {
	r, cr, run := dryRig(t)
	p := &countingPrompter{}
	r.engine.Prompter = p
	j := demoJob(t, nil)
	src := strings.Replace(string(j.Description), "PIN=PIN_FIELD", "PIN=!FROM_USER_DIALOG_2_FIELD", 1)
	j.Description = []byte(strings.Replace(src, "InitialPUK=PUK_FIELD", "InitialPUK=!FROM_USER_DIALOG_2_FIELD", 1))
	res := run.DryRun(context.Background(), j, memcard.New(memcard.Config{}), nil)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	labels := map[string]int{}
	for _, q := range p.reqs {
		labels[q.Label]++
		if q.Reader != "dry run" {
			t.Errorf("request %+v: reader %q", q, q.Reader)
		}
	}
	if len(p.reqs) != 2 || labels["PIN"] != 1 || labels["PUK"] != 1 {
		t.Errorf("asked %v, want PIN and PUK once each", labels)
	}
	noPINs(t, res.Transcript, testPIN, testPUK)
	untouched(t, r, cr)

	run.Deps.Headless = true
	p.reqs = nil
	res = run.DryRun(context.Background(), j, memcard.New(memcard.Config{}), nil)
	if res.Err == nil || res.Err.Code != api.CodePromptUnavailable || len(p.reqs) != 0 {
		t.Errorf("headless: %+v, %d requests", res.Err, len(p.reqs))
	}
}

// TestDryRunInvalid: a job that fails validation has Err as Validate's and
// neither transcript nor card I/O.
func TestDryRunInvalid(t *testing.T) {
	r, cr, run := dryRig(t)
	j := demoJob(t, map[string]string{"HOLDER": "not base64!"})
	card := memcard.New(memcard.Config{})
	res := run.DryRun(context.Background(), j, card, nil)
	if res.Err == nil || res.Err.Code != api.CodeInvalidField || res.Err.Key != "ProfileParameters" || res.Err.Line == 0 {
		t.Fatalf("Err = %+v", res.Err)
	}
	if len(res.Transcript) != 0 || res.APDUs != 0 || len(card.Transcript()) != 0 {
		t.Errorf("transcript %q, %d APDUs, card %d", res.Transcript, res.APDUs, len(card.Transcript()))
	}
	untouched(t, r, cr)
}

// BenchmarkDryRunDemo is the dry run of the demo profile to transcript:
// validation, the erase and the card profile on a new in-memory card, the
// transcript lines.
func BenchmarkDryRunDemo(b *testing.B) {
	r := &runner.Runner{Engine: &runner.Engine{Readers: runnertest.NewMemReaders(nil)}, Deps: benchDeps(b)}
	job := demoJob(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res := r.DryRun(ctx, job, memcard.New(memcard.Config{TranscriptLimit: -1}), nil)
		if res.Err != nil || len(res.Transcript) == 0 {
			b.Fatal(res.Err)
		}
	}
}
