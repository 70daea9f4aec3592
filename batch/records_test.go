package batch_test

import (
	"strings"
	"testing"

	"github.com/cardwright/cardwright/batch"
)

func TestReadRecords(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		n         int    // records, when no error
		err       string // expected error text, "" for none
	}{
		{"a.csv", "A,B\n1,2\n\n3,4\n", 2, ""},
		{"a.csv", "\uFEFFA,\"B\"\n\"x,y\",\"multi\nline\"\n5,6\n", 2, ""},
		{"a.csv", "", 0, "a.csv: no header row of field names"},
		{"a.csv", "A,B\n", 0, "a.csv: no records after the header row"},
		{"a.csv", "A,,a\n1,2,3\n", 0, "a.csv:1: column 2 has no field name\na.csv:1: field \"a\" named twice"},
		{"a.csv", "A,B\n1,2\n3\n4,5,6\n", 0, "a.csv:3: reading CSV: wrong number of fields\na.csv:4: reading CSV: wrong number of fields"},
		{"a.csv", "A,B\n1,\"2\n", 0, "a.csv:2: reading CSV: extraneous or missing \" in quoted-field"},
		{"a.jsonl", "{\"A\":\"1\"}\n\n  {\"A\":\"2\",\"B\":\"\"}  \n", 2, ""},
		{"a.ndjson", "", 0, "a.ndjson: no records"},
		{"a.jsonl", "{\"A\":1}\n[\"x\"]\n{\"A\":\"1\",\"a\":\"2\"}\n{\"A\":\"1\"} x\n{\"\":\"1\"}\n{\"A\":\"1\"\n", 0,
			"a.jsonl:1: field \"A\": the value must be a string\na.jsonl:2: a record must be a JSON object of field names and string values\n" +
				"a.jsonl:3: field \"a\" given twice\na.jsonl:4: text after the record's object\na.jsonl:5: a field has an empty name\na.jsonl:6: decoding the record: EOF"},
	} {
		recs, err := batch.ReadRecords(tc.name, []byte(tc.src))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%s %q: error\n%s\nwant\n%s", tc.name, tc.src, got, tc.err)
			continue
		}
		if err == nil && len(recs) != tc.n {
			t.Errorf("%s %q: %d records, want %d", tc.name, tc.src, len(recs), tc.n)
		}
		for i, r := range recs {
			if r.N != i+1 || r.Line == 0 {
				t.Errorf("%s: record %d numbered %d at line %d", tc.name, i, r.N, r.Line)
			}
		}
	}
	recs, _ := batch.ReadRecords("a.csv", []byte("A,B\n1,2\n\"x\ny\",4\n5,6\n"))
	if recs[2].Line != 5 || recs[1].Fields["A"].Reveal() != "x\ny" {
		t.Errorf("lines: %+v", recs)
	}
}

// TestErrorListLimit: at most ten problems are printed.
func TestErrorListLimit(t *testing.T) {
	_, err := batch.ReadRecords("a.jsonl", []byte(strings.Repeat("x\n", 15)))
	if n := strings.Count(err.Error(), "\n"); n != 10 || !strings.HasSuffix(err.Error(), "(and 5 more)") {
		t.Errorf("error list:\n%v", err)
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{"A,B\n1,2\n", "A\n\"x\ny\"\n", "A,A\n", "\uFEFFA,B\n1\n", "A,B\n1,\"2\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := batch.ReadCSV("f.csv", b)
		if err != nil {
			if _, ok := err.(batch.ErrorList); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		checkRecords(t, recs)
	})
}

func FuzzReadJSONL(f *testing.F) {
	for _, s := range []string{"{\"A\":\"1\"}\n", "{\"A\":1}\n", "{}\n{\"a\":\"\\u0000\"}", "[1]\n", "{\"A\":\"1\"} {}\n", "\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := batch.ReadJSONL("f.jsonl", b)
		if err != nil {
			if _, ok := err.(batch.ErrorList); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		checkRecords(t, recs)
	})
}

func checkRecords(t *testing.T, recs []batch.Record) {
	t.Helper()
	if len(recs) == 0 {
		t.Fatal("no records and no error")
	}
	for i, r := range recs {
		if r.N != i+1 || r.Line < 1 || (i > 0 && r.Line <= recs[i-1].Line) {
			t.Fatalf("record %d: number %d, line %d", i, r.N, r.Line)
		}
		for k := range r.Fields {
			if strings.TrimSpace(k) == "" {
				t.Fatalf("record %d: a field without a name", i)
			}
		}
	}
}
