package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

// The three ICCSN use cases of docs/dsc.md ("Card selection and identity")
// on two cards whose tokens carry CMS serials and a third whose token does
// not: reading the ICCSN, selecting by it, listing all.

// cmsJob is a description job: [Fields] are the keys of fields (declared
// empty, valued from it), desc the [Description] lines after the module.
func cmsJob(fields map[string]string, desc ...string) *runner.Job {
	var b strings.Builder
	b.WriteString("[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\n")
	for k := range fields {
		b.WriteString(k + "=\n")
	}
	b.WriteString("\n[Description]\nPKCS11Library=" + module + "\n")
	for _, l := range desc {
		b.WriteString(l + "\n")
	}
	j := &runner.Job{Name: "cms.dsc", Description: []byte(b.String()), Fields: map[string]secret.Value{}}
	for k, v := range fields {
		j.Fields[k] = secret.New(v)
	}
	return j
}

// writeCMSJob initialises the token of the card (C_InitToken) and writes
// serial as its CMSCardSerialNumber.
func writeCMSJob(reader, serial string) *runner.Job {
	j := cmsJob(map[string]string{"PIN_FIELD": testPIN, "PUK_FIELD": testPUK, "SER": serial},
		"InitToken=true", "InitialPUK=PUK_FIELD", "PIN=PIN_FIELD", "InitialLabel=#cms", "CMSCardSerialNumber=SER")
	j.Reader = reader
	return j
}

// selectJob selects by ICCSN and reads it back.
func selectJob(iccsn string, chip bool) *runner.Job {
	return cmsJob(map[string]string{"ICCSN": "", "SEL": iccsn},
		"iccsnfield=ICCSN", "UseSelectCriteriaIccsn=true", "SelectCriteriaIccsn=SEL", fmt.Sprint("useChipSerialAsIccsn=", chip))
}

// openLog records the readers whose tokens were opened, over FakeTokens.
type openLog struct {
	*runnertest.FakeTokens
	mu      sync.Mutex
	readers []string
}

func (o *openLog) Open(ctx context.Context, mod, reader string, loc runner.Location) (runner.Token, error) {
	o.mu.Lock()
	o.readers = append(o.readers, reader)
	o.mu.Unlock()
	return o.FakeTokens.Open(ctx, mod, reader, loc)
}

func (o *openLog) opened() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.readers...)
}

// cmsRig: R0 and R1 (chip serials CAFE00, CAFE01) carry CMS-A and CMS-B
// written by a job; R2 (CAFE02) has a token that was never initialised.
func cmsRig(t testing.TB) (*rig, *openLog, *runner.Runner) {
	t.Helper()
	r := newRig(t, "R0", "R1", "R2")
	log := &openLog{FakeTokens: r.tokens}
	run := &runner.Runner{Engine: r.engine, Deps: runner.Deps{Tokens: log, Profiles: runner.CPF{}}}
	for i, s := range []string{"CMS-A", "CMS-B"} {
		res := run.Run(context.Background(), writeCMSJob(fmt.Sprint("R", i), s), nil)
		if res.Err != nil {
			t.Fatalf("writing %s: %+v", s, res.Err)
		}
		if res.Fields["ICCSN"] != "" {
			t.Fatalf("write job returned ICCSN %q without asking", res.Fields["ICCSN"])
		}
	}
	r.tokens.Token("R2", runner.LocationDefault) // exists, not initialised
	log.mu.Lock()
	log.readers = nil
	log.mu.Unlock()
	return r, log, run
}

// TestSelectByCMSSerial: SelectCriteriaIccsn picks the card whose token
// carries that CMS serial, and the job reads it back as the ICCSN; with
// useChipSerialAsIccsn the chip serial selects and is read; a card without
// a CMS serial is selected by its chip serial either way. Selection logs
// in to no token and writes nothing.
func TestSelectByCMSSerial(t *testing.T) {
	r, log, run := cmsRig(t)
	before := len(r.tokens.Calls())
	for _, tc := range []struct {
		name         string
		iccsn        string
		chip         bool
		reader, want string
		code         api.Code
	}{
		{"CMS serial", "CMS-B", false, "R1", "CMS-B", ""},
		{"CMS serial, other case", "cms-a", false, "R0", "CMS-A", ""},
		{"chip serial of a card with a CMS serial", "CAFE01", false, "", "", api.CodeCardNotFound},
		{"chip serial with useChipSerialAsIccsn", "CAFE01", true, "R1", "CAFE01", ""},
		{"CMS serial with useChipSerialAsIccsn", "CMS-B", true, "", "", api.CodeCardNotFound},
		{"no CMS serial: the chip serial", "CAFE02", false, "R2", "CAFE02", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run.Run(context.Background(), selectJob(tc.iccsn, tc.chip), nil)
			if tc.code != "" {
				if res.Err == nil || res.Err.Code != tc.code || res.Err.Step != "select" {
					t.Fatalf("Err = %+v, want %s in select", res.Err, tc.code)
				}
				return
			}
			if res.Err != nil || res.Reader != tc.reader || res.Fields["ICCSN"] != tc.want {
				t.Fatalf("reader %q, ICCSN %q, err %+v; want %q, %q", res.Reader, res.Fields["ICCSN"], res.Err, tc.reader, tc.want)
			}
		})
	}
	for _, c := range r.tokens.Calls()[before:] {
		// Logout: the job's end closes the token it read the ICCSN from.
		if !slices.Contains([]string{"Open", "Info", "ReadData", "Logout", "Close"}, c) {
			t.Errorf("selection and ICCSN read called %s on a token", c)
		}
	}
	if len(log.opened()) == 0 {
		t.Error("no token was read")
	}
	// The message says why a chip serial did not match.
	res := run.Run(context.Background(), selectJob("CAFE01", false), nil)
	if res.Err == nil || !strings.Contains(res.Err.Message, "useChipSerialAsIccsn") {
		t.Errorf("Err = %+v; want a hint at useChipSerialAsIccsn", res.Err)
	}
}

// TestSelectByCMSSerialWithATR: UseICCSNwithATR appends the ATR to the CMS
// serial, for matching and for the output.
func TestSelectByCMSSerialWithATR(t *testing.T) {
	r, _, run := cmsRig(t)
	atr := strings.ToUpper(fmt.Sprintf("%X", r.readers.Card("R1").ATR()))
	j := selectJob("CMS-B-"+atr, false)
	j.Description = append(j.Description, "UseICCSNwithATR=true\n"...)
	res := run.Run(context.Background(), j, nil)
	if res.Err != nil || res.Reader != "R1" || res.Fields["ICCSN"] != "CMS-B-"+atr {
		t.Fatalf("reader %q, ICCSN %q, err %+v", res.Reader, res.Fields["ICCSN"], res.Err)
	}
}

// TestSelectByCMSSerialSkipBusyAmbiguous: a skipped reader's token is never
// opened; a busy reader is not read, and a card not found among the free
// ones ends the job with busy; two cards with one CMS serial are ambiguous.
func TestSelectByCMSSerialSkipBusyAmbiguous(t *testing.T) {
	r, log, run := cmsRig(t)
	run.Deps.Skip = func(reader string) bool { return reader == "R1" }
	res := run.Run(context.Background(), selectJob("CMS-B", false), nil)
	if res.Err == nil || res.Err.Code != api.CodeCardNotFound {
		t.Fatalf("skipped: Err = %+v, want card_not_found", res.Err)
	}
	if slices.Contains(log.opened(), "R1") {
		t.Errorf("the token of the skipped reader was opened: %v", log.opened())
	}
	run.Deps.Skip = nil

	// A job holds R1.
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan runner.Result)
	go func() {
		done <- r.engine.Exec(context.Background(), runner.Selection{Reader: "R1"}, []runner.Step{{Name: "hold",
			Run: func(context.Context, *runner.Session) error { close(started); <-release; return nil }}}, nil)
	}()
	<-started
	opened := len(log.opened())
	res = run.Run(context.Background(), selectJob("CMS-B", false), nil)
	if res.Err == nil || res.Err.Code != api.CodeBusy || !strings.Contains(res.Err.Message, "R1") {
		t.Errorf("busy: Err = %+v, want busy naming R1", res.Err)
	}
	if res = run.Run(context.Background(), selectJob("CMS-A", false), nil); res.Err != nil || res.Reader != "R0" {
		t.Errorf("beside a busy reader: reader %q, err %+v", res.Reader, res.Err)
	}
	if slices.Contains(log.opened()[opened:], "R1") {
		t.Errorf("the token of the busy reader was opened: %v", log.opened()[opened:])
	}
	close(release)
	if res := <-done; res.Err != nil {
		t.Fatal(res.Err)
	}

	if res := run.Run(context.Background(), writeCMSJob("R2", "CMS-A"), nil); res.Err != nil {
		t.Fatal(res.Err)
	}
	res = run.Run(context.Background(), selectJob("CMS-A", false), nil)
	if res.Err == nil || res.Err.Code != api.CodeCardAmbiguous || !strings.Contains(res.Err.Message, "R0, R2") {
		t.Errorf("two cards with CMS-A: Err = %+v, want card_ambiguous naming R0, R2", res.Err)
	}
}

// TestRetrieveCMSSerials: RetrieveAllTokens lists the CMS serials (the chip
// serial of a card without one), or with useChipSerialAsIccsn the chip
// serials.
func TestRetrieveCMSSerials(t *testing.T) {
	_, _, run := cmsRig(t)
	for _, tc := range []struct {
		chip bool
		want string
	}{{false, "CMS-A,CMS-B,CAFE02"}, {true, "CAFE00,CAFE01,CAFE02"}} {
		j := cmsJob(map[string]string{"ALL": ""}, "RetrieveAllTokens=true", "AllTokensIccsnsField=ALL", fmt.Sprint("useChipSerialAsIccsn=", tc.chip))
		res := run.Run(context.Background(), j, nil)
		if res.Err != nil || res.Fields["ALL"] != tc.want {
			t.Errorf("useChipSerialAsIccsn=%v: %q, %+v; want %q", tc.chip, res.Fields["ALL"], res.Err, tc.want)
		}
	}
}

// TestReadICCSNCMSSerial: a job that only reads the ICCSN of a named
// reader's card reports its CMS serial, or its chip serial with
// useChipSerialAsIccsn (the spelling useChipSerialAslccsn too).
func TestReadICCSNCMSSerial(t *testing.T) {
	_, _, run := cmsRig(t)
	for _, tc := range []struct {
		key, reader, want string
	}{
		{"", "R1", "CMS-B"},
		{"useChipSerialAsIccsn=true", "R1", "CAFE01"},
		{"useChipSerialAslccsn=true", "R0", "CAFE00"},
		{"", "R2", "CAFE02"},
	} {
		j := cmsJob(map[string]string{"ICCSN": ""}, "iccsnfield=ICCSN", tc.key)
		j.Reader = tc.reader
		res := run.Run(context.Background(), j, nil)
		if res.Err != nil || res.Fields["ICCSN"] != tc.want {
			t.Errorf("%q on %s: %q, %+v; want %q", tc.key, tc.reader, res.Fields["ICCSN"], res.Err, tc.want)
		}
	}
}

// TestCMSSerialRefused: a CMSCardSerialNumber that could not serve as an
// ICCSN (a comma would split the RetrieveAllTokens list) fails validation
// before the card is touched; a data object holding one makes the card
// unreadable for selection, with the reason in the message.
func TestCMSSerialRefused(t *testing.T) {
	r, _, run := cmsRig(t)
	res := run.Run(context.Background(), writeCMSJob("R2", "A,B"), nil)
	if res.Err == nil || res.Err.Code != api.CodeInvalidField || res.Err.Step != "validate" && res.Err.Step != "" {
		t.Fatalf("Err = %+v, want invalid_field before any step", res.Err)
	}
	if r.tokens.Token("R2", runner.LocationDefault).Initialized() {
		t.Error("the refused job initialised the token")
	}
	tok := r.tokens.Token("R1", runner.LocationDefault)
	for i, o := range tok.Objects {
		if o.Label == runner.CMSSerialLabel {
			tok.Objects[i].Value = []byte("X\x00Y")
		}
	}
	res = run.Run(context.Background(), selectJob("CMS-B", false), nil)
	if res.Err == nil || res.Err.Code != api.CodeCardNotFound || !strings.Contains(res.Err.Message, "R1: ") {
		t.Errorf("Err = %+v, want card_not_found saying why R1 was not read", res.Err)
	}
}

// BenchmarkSelectByCMSSerial measures a job that selects among three cards
// by CMS serial (every card's chip serial and token data object read) and
// reads the ICCSN back, on in-process cards and tokens: the runner's cost
// of the selection, not a module's.
func BenchmarkSelectByCMSSerial(b *testing.B) {
	_, _, run := cmsRig(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res := run.Run(ctx, selectJob("CMS-B", false), nil)
		if res.Err != nil || res.Reader != "R1" {
			b.Fatal(res.Reader, res.Err)
		}
	}
}
