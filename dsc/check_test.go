package dsc

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Inline markers in testdata/errors/*.dsc: a whole-line comment
//
//	; ERROR "regexp"      or      ; WARNING "regexp"
//
// expects a diagnostic of that severity, matching the regexp, on the next
// line that is not a marker. Every diagnostic must be expected and every
// marker met. "; PLATFORM goos/goarch" sets CheckOptions.Platform.
var markerRE = regexp.MustCompile(`^\s*[;#]\s*(ERROR|WARNING)\s+(".*")\s*$`)

type expectation struct {
	line int
	sev  Severity
	re   *regexp.Regexp
	met  bool
}

func TestCheckErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.dsc")
	if err != nil || len(files) == 0 {
		t.Fatalf("no error cases: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var opts CheckOptions
			var exps []*expectation
			var pending []*expectation
			for i, l := range strings.Split(string(src), "\n") {
				l = strings.TrimSuffix(l, "\r")
				if m := markerRE.FindStringSubmatch(l); m != nil {
					pat, err := strconv.Unquote(m[2])
					if err != nil {
						t.Fatalf("line %d: bad marker: %v", i+1, err)
					}
					sev := SeverityError
					if m[1] == "WARNING" {
						sev = SeverityWarning
					}
					pending = append(pending, &expectation{sev: sev, re: regexp.MustCompile(pat)})
					continue
				}
				if p, ok := strings.CutPrefix(strings.TrimSpace(l), "; PLATFORM "); ok {
					if opts.Platform, err = ParsePlatform(p); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for _, e := range pending {
					e.line = i + 1
				}
				exps = append(exps, pending...)
				pending = nil
			}
			if len(exps) == 0 {
				t.Fatal("no markers")
			}
			_, diags := Load(filepath.Base(path), src, opts)
			for _, d := range diags {
				if d.Pos.File != filepath.Base(path) || d.Pos.Line < 1 || d.Pos.Col < 1 {
					t.Errorf("diagnostic without a full position: %v", d)
				}
				found := false
				for _, e := range exps {
					if !e.met && e.line == d.Pos.Line && e.sev == d.Severity && e.re.MatchString(d.Msg) {
						e.met, found = true, true
						break
					}
				}
				if !found {
					t.Errorf("unexpected %v", d)
				}
			}
			for _, e := range exps {
				if !e.met {
					t.Errorf("line %d: no %v matching %q", e.line, e.sev, e.re)
				}
			}
		})
	}
}
