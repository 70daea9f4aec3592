package cardinit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/secret"
)

// FuzzForm: any description that checks makes a form, and the form's
// inputs, whatever was typed, make a job or refusals at named fields —
// never a panic, never a refusal of a field the form does not have.
func FuzzForm(f *testing.F) {
	for _, dir := range []string{"../testdata/demo", "../testdata/seed"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*.dsc"))
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				f.Add(b, "x", true)
			}
		}
	}
	f.Add([]byte("[Fields]\nN=\n[Description]\nInitToken=N\n[Application_A]\nKeySize=N\n"), "abc", false)
	f.Fuzz(func(t *testing.T, src []byte, text string, raw bool) {
		file, err := dsc.Parse("f.dsc", src)
		if err != nil {
			return
		}
		desc, _ := dsc.Check(file, dsc.CheckOptions{})
		if desc == nil {
			return
		}
		d := &Doc{Name: "f.dsc", Source: src, Desc: desc}
		d.Form, d.Outputs = form(desc)
		in := map[string]Input{}
		names := map[string]bool{}
		for _, fl := range d.Form {
			names[fl.Name] = true
			in[fl.Name] = Input{Text: text, Secret: secret.New(text), Raw: raw}
		}
		job, errs := d.Job(in, "")
		if job == nil {
			t.Fatal("no job")
		}
		for _, e := range errs {
			if !names[e.Field] {
				t.Fatalf("refusal of %q, not a field of the form", e.Field)
			}
		}
	})
}
