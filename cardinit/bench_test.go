package cardinit_test

import (
	"testing"

	"github.com/cardwright/cardwright/cardinit"
	"github.com/cardwright/cardwright/check"
)

// BenchmarkOpenDemo is cardinit.Open of the demo description
// (testdata/demo/demo.dsc): reading it and its card profile from disk (the
// page cache), the check of both (package check, as `cardwright check`
// does), the form and the outputs. It is the model's part of
// "open a description → form shown"; gui's BenchmarkInitOpen adds the
// window's.
func BenchmarkOpenDemo(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		d, err := cardinit.Open(demo, check.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if !d.Runnable() || len(d.Form) == 0 {
			b.Fatalf("the demo does not run: %v", d.Diags)
		}
	}
}
