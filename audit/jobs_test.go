package audit_test

// jobs_test.go: the audit log of real jobs — the demo description run by
// the runner on in-memory cards and the token fake, each job's record made
// by agent.Report as the agent makes it — then tampered with in every way
// Verify must find (issue 16).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
	"github.com/cardwright/cardwright/secret"
)

const (
	demoDir = "../testdata/demo"
	testPIN = "472913"
	testPUK = "83920174"
)

// stubIssuer answers every request with one certificate for the one key
// the token fake hands out (no CA signature per job).
type stubIssuer struct{ der []byte }

func (s stubIssuer) Issue(context.Context, issuer.Request) ([]byte, [][]byte, error) {
	return s.der, nil, nil
}

// jobRig runs demo jobs on reader R0 (a card) and R1 (empty).
type jobRig struct {
	run *runner.Runner
	dsc []byte
}

func newJobRig(t testing.TB) *jobRig {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "audit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(demoDir, "demo.dsc"))
	if err != nil {
		t.Fatal(err)
	}
	readers := runnertest.NewMemReaders(map[string]*memcard.Card{
		"R0": memcard.New(memcard.Config{Serial: []byte{0xCA, 0xFE, 0x00}, TranscriptLimit: -1}),
		"R1": nil,
	})
	return &jobRig{dsc: src, run: &runner.Runner{Engine: &runner.Engine{Readers: readers}, Deps: runner.Deps{
		Tokens:   &runnertest.FakeTokens{StandIn: true, NewKey: func(runner.KeySpec) (crypto.Signer, error) { return key, nil }},
		Issuer:   stubIssuer{der},
		Profiles: runner.CPF{},
	}}}
}

// job runs job n (every seventh on the empty reader, which fails) and
// returns its audit record as the agent makes it.
func (r *jobRig) job(t testing.TB, n int) *audit.Record {
	reader := "R0"
	if n%7 == 0 {
		reader = "R1"
	}
	j := &runner.Job{Name: "demo.dsc", Description: r.dsc, Files: os.DirFS(demoDir), Reader: reader, Fields: map[string]secret.Value{
		"PIN_FIELD": secret.New(testPIN), "PUK_FIELD": secret.New(testPUK), "HOLDER": secret.New("RXJpa2E="),
		"CARD_SERIAL": secret.New(fmt.Sprintf("CW-%04d", n)), "TOKEN_LABEL": secret.New("audit test"),
	}}
	started := time.Now()
	res := r.run.Run(context.Background(), j, nil)
	if (res.Err == nil) != (reader == "R0") {
		t.Fatalf("job %d on %s: %+v", n, reader, res.Err)
	}
	return agent.Report("ws", "https://portal.example", fmt.Sprintf("job-%d", n), j, &res, started, time.Now())
}

// thousandJobs is a folder with the records of 1,000 jobs, in files of
// 256 KiB (the same folder for every test of this file).
var thousandJobs string

func jobLog(t *testing.T) string {
	t.Helper()
	if thousandJobs != "" {
		return thousandJobs
	}
	dir, err := os.MkdirTemp("", "audit-jobs-")
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(dir, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	rig := newJobRig(t)
	for n := 1; n <= 1000; n++ {
		if err := l.Append(rig.job(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	thousandJobs = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if thousandJobs != "" {
		os.RemoveAll(thousandJobs)
	}
	os.Exit(code)
}

// TestThousandJobs: 1,000 jobs' records verify; they say what ran where
// and how it ended, and hold no PIN, PUK or field value.
func TestThousandJobs(t *testing.T) {
	dir := jobLog(t)
	rep, err := audit.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Problems) != 0 || rep.Records != 1000 || rep.First.Seq != 1 || rep.Last.Seq != 1000 || len(rep.Files) < 3 {
		t.Fatalf("verify: %d records in %d files, %d..%d\n%v", rep.Records, len(rep.Files), rep.First.Seq, rep.Last.Seq, rep.Problems)
	}
	var all bytes.Buffer
	if _, err := audit.Export(dir, &all, 0); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{testPIN, testPUK, "CW-0001", "RXJpa2E", "Erika", "audit test"} {
		if bytes.Contains(all.Bytes(), []byte(s)) {
			t.Errorf("the audit log holds %q", s)
		}
	}
	recs := records(t, all.Bytes())
	ok, failed := recs[0], recs[6]
	want := audit.Digest(newJobRig(t).dsc)
	if ok.Result != "ok" || ok.Reader != "R0" || ok.ICCSN != "CAFE00" || ok.ATR == "" || ok.Description != want ||
		ok.Via != "ws" || ok.Origin != "https://portal.example" || ok.Job != "job-1" || len(ok.Steps) < 5 || ok.Time.Before(ok.Started) {
		t.Errorf("record of a job that ran: %+v", ok)
	}
	if failed.Result != "no_card" || failed.Seq != 7 || failed.Job != "job-7" {
		t.Errorf("record of a job that failed: %+v", failed)
	}
}

func records(t *testing.T, data []byte) []audit.Record {
	var recs []audit.Record
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'}) {
		var r audit.Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// folder is a copy of an audit folder: its files' lines, to tamper with.
type folder struct {
	names []string
	lines [][][]byte // per file, each line with its newline
}

func readFolder(t *testing.T, dir string) *folder {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &folder{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f.names = append(f.names, e.Name())
		ls := bytes.SplitAfter(data, []byte{'\n'})
		if len(ls[len(ls)-1]) == 0 {
			ls = ls[:len(ls)-1]
		}
		f.lines = append(f.lines, ls)
	}
	// audit-<seq>.log sort before audit.log: ReadDir's order is the chain's.
	return f
}

func (f *folder) write(t *testing.T) string {
	dir := t.TempDir()
	for i, n := range f.names {
		if f.lines[i] == nil {
			continue
		}
		var b []byte
		for _, l := range f.lines[i] {
			b = append(b, l...)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func seqOf(t *testing.T, line []byte) uint64 {
	var r audit.Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

// forge edits a record and recomputes its hash as a tamperer who read
// record.go would: SHA-256 over the JSON without the hash.
func forge(t *testing.T, line []byte, edit func(*audit.Record)) []byte {
	var r audit.Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	edit(&r)
	r.Hash = ""
	body, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return []byte(string(body[:len(body)-1]) + `,"hash":"` + hex.EncodeToString(sum[:]) + "\"}\n")
}

func remove(ls [][]byte, i int) [][]byte { return append(ls[:i:i], ls[i+1:]...) }
func insert(ls [][]byte, i int, l []byte) [][]byte {
	return append(ls[:i:i], append([][]byte{l}, ls[i:]...)...)
}

// TestThousandJobsTampering: on the 1,000-job log, each kind of tampering
// is found and named: the file, the line and the seq of the record.
func TestThousandJobsTampering(t *testing.T) {
	src := jobLog(t)
	type finding struct {
		file int
		line int
		seq  uint64
		kind audit.Kind
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, f *folder) []finding
	}{
		{"changed: a result", func(t *testing.T, f *folder) []finding {
			l := f.lines[1][10]
			f.lines[1][10] = bytes.Replace(l, []byte(`"result":"`), []byte(`"result":"ok`), 1)
			return []finding{{1, 11, seqOf(t, l), audit.Changed}}
		}},
		{"changed: a card's ICCSN", func(t *testing.T, f *folder) []finding {
			l := f.lines[0][0]
			f.lines[0][0] = bytes.Replace(l, []byte(`"iccsn":"CAFE00"`), []byte(`"iccsn":"CAFE01"`), 1)
			return []finding{{0, 1, 1, audit.Changed}}
		}},
		{"removed: one record", func(t *testing.T, f *folder) []finding {
			next := seqOf(t, f.lines[0][21])
			f.lines[0] = remove(f.lines[0], 20)
			return []finding{{0, 21, next, audit.Removed}}
		}},
		{"removed: a closed file", func(t *testing.T, f *folder) []finding {
			f.lines[1] = nil
			return []finding{{2, 1, seqOf(t, f.lines[2][0]), audit.Removed}}
		}},
		{"inserted: a copy of a record", func(t *testing.T, f *folder) []finding {
			f.lines[2] = insert(f.lines[2], 5, f.lines[0][3])
			return []finding{{2, 6, 4, audit.Inserted}}
		}},
		{"inserted: a forged record with its hash", func(t *testing.T, f *folder) []finding {
			last := len(f.lines) - 1
			forged := forge(t, f.lines[last][2], func(r *audit.Record) { r.Seq = 5000; r.Job = "never ran" })
			f.lines[last] = insert(f.lines[last], 3, forged)
			return []finding{{last, 4, 5000, audit.Inserted}}
		}},
		{"inserted: a record replaced, its hash recomputed", func(t *testing.T, f *folder) []finding {
			f.lines[1][4] = forge(t, f.lines[1][4], func(r *audit.Record) { r.Result = "ok"; r.ICCSN = "BEEF" })
			return []finding{{1, 6, seqOf(t, f.lines[1][5]), audit.Inserted}}
		}},
		{"reordered: two records swapped", func(t *testing.T, f *folder) []finding {
			last := len(f.lines) - 1
			f.lines[last][7], f.lines[last][8] = f.lines[last][8], f.lines[last][7]
			return []finding{{last, 8, seqOf(t, f.lines[last][7]), audit.Reordered}}
		}},
		{"reordered: a record moved to a later file", func(t *testing.T, f *folder) []finding {
			moved := f.lines[0][9]
			f.lines[0] = remove(f.lines[0], 9)
			f.lines[2] = insert(f.lines[2], 0, moved)
			return []finding{{2, 1, 10, audit.Reordered}}
		}},
		{"torn: the last line cut (not a failure)", func(t *testing.T, f *folder) []finding {
			last := len(f.lines) - 1
			n := len(f.lines[last])
			f.lines[last][n-1] = f.lines[last][n-1][:100]
			return []finding{{last, n, 0, audit.Torn}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := readFolder(t, src)
			if len(f.names) < 4 {
				t.Fatalf("only %d files", len(f.names))
			}
			want := tc.tamper(t, f)
			rep, err := audit.Verify(f.write(t))
			if err != nil {
				t.Fatal(err)
			}
			var got []finding
			var text []string
			for _, p := range rep.Problems {
				fi := -1
				for i, n := range f.names {
					if n == p.File {
						fi = i
					}
				}
				got = append(got, finding{fi, p.Line, p.Seq, p.Kind})
				text = append(text, p.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("found %v, want %v:\n%s", got, want, strings.Join(text, "\n"))
			}
			if wantOK := want[0].kind == audit.Torn; rep.OK() != wantOK {
				t.Errorf("OK() = %v", rep.OK())
			}
			t.Logf("%s", strings.Join(text, "\n"))
		})
	}
}

// BenchmarkJobAudit is the audit log's cost per job: the same demo job on
// an in-memory card with no audit log (off) and with each record appended
// and fsynced (on), in one run. The difference of the two ns/op is the
// overhead; it is the fsync of the disk under the temporary folder.
func BenchmarkJobAudit(b *testing.B) {
	rig := newJobRig(b)
	b.Run("off", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			rig.job(b, 1+n%6) // R0 only: every job runs the whole description
		}
	})
	b.Run("on", func(b *testing.B) {
		l, err := audit.Open(b.TempDir(), 16<<20)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		n := 0
		for b.Loop() {
			n++
			if err := l.Append(rig.job(b, 1+n%6)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append-only", func(b *testing.B) {
		l, err := audit.Open(b.TempDir(), 16<<20)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		rec := rig.job(b, 1)
		for b.Loop() {
			r := *rec
			if err := l.Append(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
