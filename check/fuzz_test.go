package check

import (
	"bytes"
	"path/filepath"
	"testing"
	"testing/fstest"

	"golang.org/x/tools/txtar"

	"github.com/cardwright/cardwright/dsc"
)

// FuzzCheckProfile checks a description together with the profile it
// names: nothing panics, and every diagnostic lies inside the file it
// names (line 0 is a finding about the whole file). The seeds are the
// descriptions and profiles of `cardwright check`'s goldens.
func FuzzCheckProfile(f *testing.F) {
	goldens, _ := filepath.Glob("../cmd/cardwright/testdata/check/*.txtar")
	for _, name := range goldens {
		ar, err := txtar.ParseFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var d, p []byte
		for _, file := range ar.Files {
			switch file.Name {
			case "e.dsc", "jobs/e.dsc", "zip:job.dsz/job/e.dsc":
				d = file.Data
			case "p.cpf", "jobs/p.cpf", "zip:job.dsz/job/p.cpf":
				p = file.Data
			}
		}
		if d != nil && p != nil {
			f.Add(d, p)
		}
	}
	f.Add([]byte("[Description]\nInitToken=true\nChipProfile=p.cpf\nPIN=#1\n"), []byte("CardModel 'ISO7816'\nCreatePin PIN1 value=SEC_PIN1 minlen=9\n"))
	opts := Options{Models: map[string]string{"SIEMENS50": "ISO7816"}, MissingFiles: dsc.SeverityWarning}
	f.Fuzz(func(t *testing.T, desc, profile []byte) {
		files := fstest.MapFS{"p.cpf": {Data: profile}}
		_, diags := Description("e.dsc", desc, files, opts)
		lines := map[string]int{"e.dsc": bytes.Count(desc, []byte("\n")) + 1, "p.cpf": bytes.Count(profile, []byte("\n")) + 1}
		for _, d := range diags {
			n, ok := lines[d.Pos.File]
			if !ok || d.Pos.Line < 0 || d.Pos.Line > n || d.Pos.Col < 0 {
				t.Fatalf("diagnostic outside its file: %v", d)
			}
		}
	})
}
