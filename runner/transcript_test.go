package runner_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/runner"
)

// demoJobFile is the demo job of testdata/demo/demo-job.json as a
// runner.Job: its description and profile, its field values (with the
// holder's name, which the file leaves empty, base64 as the form makes it).
func demoJobFile(t *testing.T) (*runner.Job, []string) {
	t.Helper()
	b, err := os.ReadFile(demoDir + "/demo-job.json")
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		Fields map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	fields := wire.Fields
	fields["HOLDER"] = demoJob(t, nil).Fields["HOLDER"].Reveal()
	pins := []string{fields["PIN_FIELD"], fields["PUK_FIELD"]}
	if pins[0] == "" || pins[1] == "" {
		t.Fatalf("demo-job.json has no PIN or PUK: %v", fields)
	}
	return demoJob(t, fields), pins
}

// serialLine reports a transcript line of an ICCSN read (GET DATA 5A): at
// connect, or a re-identification.
func serialLine(l string) bool {
	_, cmd, _ := strings.Cut(l, ": ")
	return strings.HasPrefix(cmd, "00CA005A")
}

// TestRunTranscript: a run whose job asks for a transcript records every
// APDU the card sees — the ICCSN read at connect, the erase, the card
// profile (cpf's lines), the re-identification at the end — with no PIN
// or PUK in it; the card profile's part is the dry run's for the same
// values.
func TestRunTranscript(t *testing.T) {
	r := newRig(t, "R0")
	run := demoRunner(t, r)
	job, pins := demoJobFile(t)
	job.Transcript = true
	res := run.Run(context.Background(), job, nil)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	tr := res.Transcript
	all := strings.Join(tr, "\n")
	noPINs(t, tr, pins...)
	noSecrets(t, res)
	if n := len(r.readers.Card("R0").Transcript()); n != res.APDUs || n == 0 {
		t.Errorf("the card saw %d APDUs, the transcript counts %d:\n%s", n, res.APDUs, all)
	}
	if len(tr) < 3 || !strings.HasPrefix(tr[0], "connect: 00CA005A") || !strings.HasPrefix(tr[len(tr)-1], "finish: 00CA005A") {
		t.Fatalf("want the ICCSN read first and the re-identification last:\n%s", all)
	}
	if !strings.Contains(all, "\nInitToken: ") || !strings.Contains(all, "secret bytes>") {
		t.Errorf("no masked profile lines:\n%s", all)
	}

	dry := run.DryRun(context.Background(), demoJobFileT(t), memcard.New(memcard.Config{}), nil)
	if dry.Err != nil {
		t.Fatalf("dry run: %+v", dry.Err)
	}
	var got, want []string
	for _, l := range tr {
		if !serialLine(l) {
			got = append(got, l)
		}
	}
	for _, l := range dry.Transcript {
		if !serialLine(l) {
			want = append(want, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("run and dry run differ beyond the ICCSN reads:\nrun:\n%s\ndry run:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Again on the same card: the erase (DeleteProfile) is in it too.
	job, _ = demoJobFile(t)
	job.Transcript = true
	res = run.Run(context.Background(), job, nil)
	if res.Err != nil {
		t.Fatalf("second run: %+v", res.Err)
	}
	if all := strings.Join(res.Transcript, "\n"); !strings.Contains(all, "DeleteProfile: 00E4") {
		t.Errorf("second run: no erase in\n%s", all)
	}
	noPINs(t, res.Transcript, pins...)
}

// demoJobFileT is demoJobFile's job alone.
func demoJobFileT(t *testing.T) *runner.Job {
	j, _ := demoJobFile(t)
	return j
}

// TestRunNoTranscript: a job that does not ask for a transcript (a
// portal's) gets none.
func TestRunNoTranscript(t *testing.T) {
	r := newRig(t, "R0")
	res := demoRunner(t, r).Run(context.Background(), demoJobFileT(t), nil)
	if res.Err != nil {
		t.Fatalf("%+v", res.Err)
	}
	if res.Transcript != nil || res.APDUs != 0 {
		t.Errorf("transcript %q, %d APDUs", res.Transcript, res.APDUs)
	}
}

// TestRunTranscriptFailure: a job that fails keeps its transcript up to
// the failure, secret script lines and PIN commands masked.
func TestRunTranscriptFailure(t *testing.T) {
	cpfSrc, err := os.ReadFile(demoDir + "/demo.cpf")
	if err != nil {
		t.Fatal(err)
	}
	pinHex := hex.EncodeToString([]byte(testPIN))
	script := strings.Join([]string{
		"00 20 00 81 | ${<string>PIN_FIELD}",
		"00 20 00 81 | " + pinHex,
		"00 A4 00 0C 02 12 34 => 9000", // no such file: the job ends here
		"00 CA 00 5A 00",
	}, "\n") + "\n"
	for _, tc := range []struct {
		name     string
		script   bool
		failOn   string
		code     api.Code
		last     string // the transcript's last line starts so
		lastStep string
	}{
		{"script", true, "", api.CodeApduScript, "ApduFile: 00A4000C021234 -> 6A82", "ApduFile"},
		{"token", false, "GenerateKeyPair", api.CodeTokenError, "InitToken: ", "Application_A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			if tc.failOn != "" {
				r.tokens.FailOn = map[string]error{tc.failOn: fmt.Errorf("fake failure: %w", runner.ErrToken)}
			}
			job, pins := demoJobFile(t)
			if tc.script {
				job.Description = []byte(strings.Replace(string(job.Description), "[Application_A]", "ApduFile=pins.apdu\n\n[Application_A]", 1))
				job.Files = runner.Files{"demo.cpf": cpfSrc, "pins.apdu": []byte(script)}
			}
			job.Transcript = true
			res := demoRunner(t, r).Run(context.Background(), job, nil)
			if res.Err == nil || res.Err.Code != tc.code || res.Err.Step != tc.lastStep {
				t.Fatalf("Err = %+v, want %s in %s", res.Err, tc.code, tc.lastStep)
			}
			tr := res.Transcript
			all := strings.Join(tr, "\n")
			if len(tr) == 0 || !strings.HasPrefix(tr[len(tr)-1], tc.last) || strings.Contains(all, "finish: ") {
				t.Errorf("want the transcript to end with %q:\n%s", tc.last, all)
			}
			if n := len(r.readers.Card("R0").Transcript()); n != res.APDUs {
				t.Errorf("the card saw %d APDUs, the transcript counts %d", n, res.APDUs)
			}
			if tc.script && !strings.Contains(all, "ApduFile: 0020 <9 secret bytes>") {
				t.Errorf("secret script line not masked as such:\n%s", all)
			}
			noPINs(t, tr, pins...)
		})
	}
}
