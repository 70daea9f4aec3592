package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkVerify is the speed of `cardwright audit verify`: a folder of
// 10,000 job records (in 16 KiB… files of the default 16 MiB: one) read,
// decoded, re-encoded, hashed and chained; records/s is the figure.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	const n = 10000
	writeLog(b, dir, n, 16<<20)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(dir)
		if err != nil || !rep.OK() || rep.Records != n {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// FuzzVerify: any bytes as the current file never panic Verify; a log
// written by Append from records made of the input stays valid (so no
// string Append accepts makes a line Verify rejects).
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	writeLog(f, dir, 4, 0)
	valid, err := os.ReadFile(filepath.Join(dir, CurrentFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-20])
	f.Add(bytes.Replace(valid, []byte(`"ok"`), []byte(`"no"`), 1))
	f.Add([]byte("{}\n{\"seq\":1}\n\n"))
	f.Add([]byte(`{"seq":18446744073709551615,"hash":"` + string(bytes.Repeat([]byte("a"), 64)) + "\"}\n" + `{"seq":1}` + "\n"))
	f.Add([]byte("\xff\xfe<\u2028&\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any file.
		v := newVerifier(true)
		v.file(CurrentFile, data, true)
		rep := v.finish([]Anchor{{Seq: 3, Hash: "00"}})
		for _, p := range rep.Problems {
			_ = p.String()
		}
		if _, err := VerifyStream("x", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		// The input as the strings of records, sealed as Append does
		// (without the file and its fsyncs).
		var (
			log  bytes.Buffer
			buf  bytes.Buffer
			prev string
		)
		parts := bytes.SplitN(data, []byte{0}, 64)
		for i, p := range parts {
			r := testRecord(i)
			r.Reader, r.Job, r.Origin = string(p), string(p), string(p)
			r.Steps = append(r.Steps, Step{Name: string(p), Kind: string(p), MS: float64(len(p)) / 3})
			line, err := seal(&buf, r, uint64(i+1), prev)
			if err != nil {
				t.Fatal(err)
			}
			log.Write(line)
			prev = r.Hash
		}
		v = newVerifier(true)
		v.file(CurrentFile, log.Bytes(), true)
		if rep := v.finish(nil); len(rep.Problems) != 0 || rep.Records != len(parts) {
			t.Fatalf("a log of %d records does not verify:\n%s", len(parts), problems(rep))
		}
	})
}
