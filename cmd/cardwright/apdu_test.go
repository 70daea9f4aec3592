package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestAPDUBadInput: every mistake is one line on stderr, exit 2, nothing
// on stdout — and it is found before any reader is touched (these run
// without the stack).
func TestAPDUBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no reader", []string{"apdu", "00A40000"}, "--reader is required"},
		{"no APDU", []string{"apdu", "--reader", "X"}, "no APDU given"},
		{"not hex", []string{"apdu", "--reader", "X", "00A4ZZ00"}, `bad character 'Z'`},
		{"odd digits", []string{"apdu", "--reader", "X", "00A400000"}, "odd number of hex digits"},
		{"empty", []string{"apdu", "--reader", "X", " "}, "APDU 1: empty"},
		{"too short", []string{"apdu", "--reader", "X", "00A400"}, "not a command APDU"},
		{"Lc mismatch", []string{"apdu", "--reader", "X", "00D6000005AABB"}, "not a command APDU"},
		{"second one bad", []string{"apdu", "--reader", "X", "0084000008", "00840000080000"}, "APDU 2:"},
		{"too long for a short card", []string{"apdu", "--reader", "X", "00D6000000012C" + strings.Repeat("00", 300)}, "300 data bytes"},
		{"extended Le", []string{"apdu", "--reader", "X", "00B000000001F4"}, "need an extended-length APDU"},
		{"bad flag", []string{"apdu", "--nosuch"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cliRun(t, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.msg) || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q", code, errOut, out, tt.msg)
			}
			if tt.name != "bad flag" && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is more than one line: %q", errOut)
			}
		})
	}
}

var responseLine = regexp.MustCompile(`^< (?:([0-9A-F]+) )?([0-9A-F]{4}) \((.+)\)$`)

// apduLines runs `cardwright apdu` and returns the response lines' data
// and status words.
func apduLines(t *testing.T, args ...string) (data, sws []string, stdout string) {
	t.Helper()
	code, out, errOut := cliRun(t, append([]string{"apdu"}, args...)...)
	if code != exitOK {
		t.Fatalf("apdu %q: exit %d: %s", args, code, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "> ") {
			continue
		}
		m := responseLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected output line %q in\n%s", line, out)
		}
		data, sws = append(data, m[1]), append(sws, m[2])
	}
	return data, sws, out
}

func TestAPDUOnStack(t *testing.T) {
	s := stacktest.Require(t)
	own, vicc := s.Get(t, "READER_OWN_1"), s.Get(t, "READER_VICC_1")

	// The own card: serial number and a challenge.
	data, sws, out := apduLines(t, "--reader", own, "00CA005A00", "00 84 00 00 08")
	if sws[0] != "9000" || data[0] != s.Get(t, "SERIAL_OWN_1") {
		t.Errorf("GET DATA 005A on the own card: %s", out)
	}
	if sws[1] != "9000" || len(data[1]) != 16 {
		t.Errorf("GET CHALLENGE on the own card: %s", out)
	}
	if !strings.Contains(out, "> 00CA005A00\n") || !strings.Contains(out, "(success)") {
		t.Errorf("output does not echo the command or the meaning:\n%s", out)
	}

	// Le too short: raw shows 6Cxx, --auto re-issues.
	_, sws, out = apduLines(t, "--reader", own, "00CA005A02")
	if !strings.HasPrefix(sws[0], "6C") || !strings.Contains(out, "wrong Le") {
		t.Errorf("GET DATA Le 02 raw: %s", out)
	}
	data, sws, _ = apduLines(t, "--auto", "--reader", own, "00CA005A02")
	if sws[0] != "9000" || data[0] != s.Get(t, "SERIAL_OWN_1") {
		t.Errorf("GET DATA Le 02 --auto: %v %v", data, sws)
	}

	// vicc: SELECT MF and GET CHALLENGE.
	_, sws, out = apduLines(t, "--reader", vicc, "00A4000C023F00", "0084000008")
	if sws[0] != "9000" || sws[1] != "9000" {
		t.Errorf("vicc: %s", out)
	}

	// An error status word is shown with its meaning, not treated as a failure.
	_, sws, out = apduLines(t, "--reader", own, "00CA006600")
	if sws[0] != "6A88" || !strings.Contains(out, "(referenced data not found)") {
		t.Errorf("GET DATA 0066: %s", out)
	}

	// Credential data is not echoed (VERIFY P1 FF with data: refused by
	// the card, harmless to its state).
	_, _, out = apduLines(t, "--reader", own, "0020FF8104 31323334")
	if strings.Contains(out, "31323334") || !strings.Contains(out, "<4 secret bytes>") {
		t.Errorf("VERIFY echoed its data:\n%s", out)
	}

	// An extended APDU to cards whose ATR says they take none: refused, nothing sent.
	for _, r := range []string{own, vicc} {
		code, stdout, errOut := cliRun(t, "apdu", "--extended", "--reader", r, "0084000008", "00840000000101")
		if code != exitFailure || stdout != "" || !strings.Contains(errOut, "APDU 2: the card in") || !strings.Contains(errOut, "nothing sent") {
			t.Errorf("extended APDU to %q: exit %d, stdout %q, stderr %q", r, code, stdout, errOut)
		}
	}

	// Unknown reader: one line naming the readers there are, exit 1.
	code, stdout, errOut := cliRun(t, "apdu", "--reader", "No Such Reader 00 00", "0084000008")
	if code != exitFailure || stdout != "" || !strings.Contains(errOut, `unknown reader "No Such Reader 00 00"`) ||
		!strings.Contains(errOut, own) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("unknown reader: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
}
