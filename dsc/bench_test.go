package dsc

import (
	"os"
	"testing"
	"testing/fstest"
)

// BenchmarkParseCheckPlan is the figure: parse + check + plan of
// the largest seed example (target < 50 µs and < 200 allocations).
func BenchmarkParseCheckPlan(b *testing.B) {
	src, err := os.ReadFile("../testdata/seed/cms_card_serial.dsc")
	if err != nil {
		b.Fatal(err)
	}
	job := Job{
		Platform: Platform{"windows", "386"},
		Files:    fstest.MapFS{"PRIME_CardOS5_personal.cpf": {Data: []byte("; profile\n")}},
		Fields: map[string]string{"AppList": "AB", "PIN_FIELD": "482913", "PUK_FIELD": "87654321",
			"OP_PIN_FIELD": "99999999", "PRIME_FIELD_WITH_CARD_SERIAL": "CW-000042"},
		Secret: map[string]bool{"PIN_FIELD": true, "PUK_FIELD": true, "OP_PIN_FIELD": true},
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		d, diags := Load("cms_card_serial.dsc", src, CheckOptions{Platform: job.Platform})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if _, err := NewPlan(d, job); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse is the scanner and parser alone, for comparison.
func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("../testdata/seed/cms_card_serial.dsc")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse("cms_card_serial.dsc", src); err != nil {
			b.Fatal(err)
		}
	}
}
