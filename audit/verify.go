package audit

// verify.go: checking the chain (spec/station.md "Audit": "detects a
// changed, removed or reordered record"). Every line must be exactly the
// JSON Append wrote (so no field can be added, dropped or re-spelled) with a
// hash over the rest of it; seqs must run 1, 2, 3 … in file order; each
// record's prev must be the hash of the record before. What a tamperer
// with write access can still do undetected — drop the newest records, or
// rewrite the chain from some record to the end with recomputed hashes —
// only an outside copy of a record's hash catches: an Anchor (docs/station.md).

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is what is wrong with a record.
type Kind string

const (
	// Changed: the line is not what the log wrote for its hash (an edited
	// field, an unreadable line).
	Changed Kind = "changed"
	// Removed: seqs are missing from the chain.
	Removed Kind = "removed"
	// Inserted: a record the log did not write there: a seq seen before, or
	// a record whose own hash is right but whose prev is not the hash of
	// the record before it (one of the two was replaced).
	Inserted Kind = "inserted"
	// Reordered: a genuine record (its prev is its predecessor's hash) in
	// the wrong place.
	Reordered Kind = "reordered"
	// Torn: the last line of the current file is unfinished (a record being
	// written when the process died, or being written right now). Not a
	// break of the chain: no record whose Append returned is ever torn.
	Torn Kind = "torn"
)

// Problem is one finding: where and which record.
type Problem struct {
	File   string // the file's name in the folder
	Line   int
	Seq    uint64 // the record's seq; 0 when the line has none
	Kind   Kind
	Detail string
}

func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	if p.Seq != 0 {
		fmt.Fprintf(&b, "seq %d: ", p.Seq)
	}
	fmt.Fprintf(&b, "%s: %s", p.Kind, p.Detail)
	return b.String()
}

// Anchor is a record's hash kept outside the station (a server's copy of
// an export, a printed report): the chain must still hold that record.
type Anchor struct {
	Seq  uint64
	Hash string
}

// ParseAnchor reads "SEQ:HASH".
func ParseAnchor(s string) (Anchor, error) {
	n, h, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || seq == 0 {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH", s)
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return Anchor{}, fmt.Errorf("anchor %q: the hash is not 64 hex digits", s)
	}
	return Anchor{Seq: seq, Hash: strings.ToLower(h)}, nil
}

// Point is a record's place in the chain, for a report's summary.
type Point struct {
	Seq  uint64
	Time time.Time
	Hash string
}

// Report is what Verify found.
type Report struct {
	Files       []string // in chain order
	Records     int      // complete lines that are records (valid or not)
	First, Last Point    // the first record, and the last of the chain (the highest seq in place)
	Problems    []Problem
}

// OK reports whether the chain is whole: no problem but a torn tail.
func (r *Report) OK() bool {
	for _, p := range r.Problems {
		if p.Kind != Torn {
			return false
		}
	}
	return true
}

// Verify checks every file of the audit folder dir, oldest first, and the
// anchors. The error is for a folder that cannot be read; what is wrong
// with the records is in the report.
//
// A writer may rotate while Verify reads: audit.log, listed, is then read
// as the new file, and the closed one is missing from the list (a false
// removed). So the folder is listed again after reading; when its files
// changed (a rotation adds a closed file), everything is read once more.
func Verify(dir string, anchors ...Anchor) (*Report, error) {
	for attempt := 0; ; attempt++ {
		files, err := logFiles(dir)
		if err != nil {
			return nil, err
		}
		v := newVerifier(true)
		retry := false
		for i, f := range files {
			data, err := readFile(filepath.Join(dir, f.name))
			if errors.Is(err, fs.ErrNotExist) && f.name == CurrentFile && attempt == 0 {
				retry = true // renamed by a rotation, the new one not yet made
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading the audit log: %w", err)
			}
			v.file(f.name, data, i == len(files)-1)
		}
		if attempt == 0 && !retry {
			again, err := logFiles(dir)
			retry = err == nil && !slices.Equal(files, again)
		}
		if retry {
			continue
		}
		return v.finish(anchors), nil
	}
}

// readFile is os.ReadFile; a test rotates the log between listing and
// reading.
var readFile = os.ReadFile

// VerifyStream checks one stream of records, such as an export: the chain
// may begin at any seq (the first record's prev is taken as given).
func VerifyStream(name string, r io.Reader, anchors ...Anchor) (*Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	v := newVerifier(false)
	v.file(name, data, true)
	return v.finish(anchors), nil
}

// entry is a line as the chain check needs it.
type entry struct {
	file, line int
	seq        uint64
	time       time.Time
	hash, prev [32]byte
	noPrev     bool // prev is empty
	badLinks   bool // hash or prev is not 64 hex digits
	changed    bool // the line is not what the log wrote
	unreadable bool // not a record at all
}

type verifier struct {
	fromOne  bool // the chain begins at seq 1 (a folder), not anywhere (a stream)
	files    []string
	entries  []entry
	problems []ordered
	buf      bytes.Buffer
	records  int
}

type ordered struct {
	file, line int
	p          Problem
}

func newVerifier(fromOne bool) *verifier { return &verifier{fromOne: fromOne} }

func (v *verifier) add(file, line int, seq uint64, k Kind, format string, a ...any) {
	v.problems = append(v.problems, ordered{file, line, Problem{File: v.files[file], Line: line, Seq: seq, Kind: k, Detail: fmt.Sprintf(format, a...)}})
}

func (v *verifier) where(e *entry) string { return fmt.Sprintf("%s:%d", v.files[e.file], e.line) }

// file reads one file's lines; last says it is the current file, whose
// unfinished last line is a torn tail rather than damage.
func (v *verifier) file(name string, data []byte, last bool) {
	fi := len(v.files)
	v.files = append(v.files, name)
	for ln := 1; len(data) > 0; ln++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if last {
				v.add(fi, ln, 0, Torn, "unfinished last line (%d bytes): a record cut off while being written", len(data))
			} else {
				v.add(fi, ln, 0, Changed, "unfinished last line (%d bytes) in a closed file", len(data))
				v.entries = append(v.entries, entry{file: fi, line: ln, unreadable: true})
			}
			return
		}
		v.line(fi, ln, data[:i])
		data = data[i+1:]
	}
}

func (v *verifier) line(fi, ln int, line []byte) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil || r.Seq == 0 {
		why := "no seq"
		if err != nil {
			why = err.Error()
		}
		v.add(fi, ln, 0, Changed, "not a record (%s)", why)
		v.entries = append(v.entries, entry{file: fi, line: ln, unreadable: true})
		return
	}
	v.records++
	e := entry{file: fi, line: ln, seq: r.Seq, time: r.Time, noPrev: r.Prev == ""}
	if !decodeHash(r.Hash, &e.hash) || (!e.noPrev && !decodeHash(r.Prev, &e.prev)) {
		e.badLinks = true
	}
	stored := r.Hash
	canon, err := encode(&v.buf, &r)
	switch {
	case err != nil:
		e.changed = true
		v.add(fi, ln, r.Seq, Changed, "cannot be encoded again (%v)", err)
	case !bytes.Equal(canon[:len(canon)-1], line):
		e.changed = true
		const tail = len(`,"hash":"`) + 64 + len(`"}`)
		if stored != r.Hash && len(line) >= tail && bytes.Equal(line[:len(line)-tail], canon[:len(canon)-1-tail]) {
			v.add(fi, ln, r.Seq, Changed, "its hash does not match its content")
		} else {
			v.add(fi, ln, r.Seq, Changed, "not the line the log wrote (fields added, removed or re-spelled)")
		}
	}
	v.entries = append(v.entries, e)
}

func decodeHash(s string, h *[32]byte) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.Decode(h[:], []byte(s))
	return err == nil
}

// finish walks the chain. The records in place are the longest run of
// rising seqs in file order (first copies only); every other record is out
// of place: a duplicate, reordered (it links to its own predecessor) or
// inserted (it does not). Seqs that appear nowhere are removed. Then every
// record in place must carry its predecessor's hash.
func (v *verifier) finish(anchors []Anchor) *Report {
	rep := &Report{Files: v.files, Records: v.records}
	bySeq := map[uint64][]int{} // seq → entries, in file order
	for i := range v.entries {
		if e := &v.entries[i]; !e.unreadable {
			bySeq[e.seq] = append(bySeq[e.seq], i)
		}
	}
	inPlace := v.longestRun(bySeq)
	var cur uint64 // the last seq in place
	started := v.fromOne
	unreadable := 0 // lines since the last record in place that were not records
	var lastIn *entry
	for i := range v.entries {
		e := &v.entries[i]
		if e.unreadable {
			unreadable++
			continue
		}
		if rep.First.Seq == 0 {
			rep.First = Point{Seq: e.seq, Time: e.time, Hash: hex.EncodeToString(e.hash[:])}
		}
		if first := bySeq[e.seq][0]; first != i {
			v.add(e.file, e.line, e.seq, Inserted, "seq %d appears again (first at %s)", e.seq, v.where(&v.entries[first]))
			continue
		}
		if j, ok := inPlace[e.seq]; !ok || j != i {
			v.misplaced(e, lastIn, bySeq)
			continue
		}
		if !started { // a stream begins where its first record in place is
			cur, started = e.seq-1, true
		}
		if e.seq > cur+1 {
			v.gap(e, cur, unreadable, bySeq)
		}
		cur, unreadable, lastIn = e.seq, 0, e
	}
	if lastIn != nil {
		rep.Last = Point{Seq: lastIn.seq, Time: lastIn.time, Hash: hex.EncodeToString(lastIn.hash[:])}
	}
	// Links: a record in place must carry its predecessor's hash (where the
	// predecessor is anywhere in the files; a missing one is reported).
	for i := range v.entries {
		e := &v.entries[i]
		seq := e.seq
		if j, ok := inPlace[seq]; !ok || j != i || e.changed || e.badLinks {
			continue // out of place or changed (reported; its prev may be what was edited)
		}
		if seq == 1 && v.fromOne {
			if !e.noPrev {
				v.add(e.file, e.line, seq, Inserted, "the first record has a prev: records before it were removed, or it was put in")
			}
			continue
		}
		idx := bySeq[seq-1]
		if len(idx) == 0 {
			continue
		}
		p := &v.entries[idx[0]]
		if e.noPrev || e.prev != p.hash {
			v.add(e.file, e.line, seq, Inserted, "its prev is not the hash of seq %d (%s): one of the two is not the record the log wrote (replaced, its hash recomputed)", seq-1, v.where(p))
		}
	}
	for _, a := range anchors {
		i, ok := inPlace[a.Seq]
		if !ok {
			if len(v.files) == 0 {
				v.files = append(v.files, "")
			}
			f, ln := len(v.files)-1, 0
			if lastIn != nil {
				f, ln = lastIn.file, lastIn.line
			}
			v.add(f, ln, a.Seq, Removed, "the anchored record (hash %.12s…) is not in the chain: records were removed from the end", a.Hash)
			continue
		}
		e := &v.entries[i]
		if got := hex.EncodeToString(e.hash[:]); got != a.Hash {
			v.add(e.file, e.line, e.seq, Changed, "its hash %.12s… is not the anchored %.12s…: the chain was rewritten from here or before", got, a.Hash)
		}
	}
	sort.SliceStable(v.problems, func(i, j int) bool {
		a, b := v.problems[i], v.problems[j]
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	for _, p := range v.problems {
		rep.Problems = append(rep.Problems, p.p)
	}
	return rep
}

// longestRun returns the records in place, seq → entry: the longest
// subsequence of first copies whose seqs rise (patience sorting, n log n),
// the fewest records to call out of place.
func (v *verifier) longestRun(bySeq map[uint64][]int) map[uint64]int {
	var tails []int // tails[k]: the entry ending the best run of length k+1
	parent := make([]int, len(v.entries))
	for i := range v.entries {
		e := &v.entries[i]
		if e.unreadable || bySeq[e.seq][0] != i {
			continue
		}
		k := sort.Search(len(tails), func(k int) bool { return v.entries[tails[k]].seq >= e.seq })
		parent[i] = -1
		if k > 0 {
			parent[i] = tails[k-1]
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	in := map[uint64]int{}
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = parent[i] {
			in[v.entries[i].seq] = i
		}
	}
	return in
}

// misplaced reports e, which is out of place (after the record in place
// before, nil at the start): reordered when it links to its own
// predecessor, inserted when it does not.
func (v *verifier) misplaced(e, before *entry, bySeq map[uint64][]int) {
	where := "at the start"
	if before != nil {
		where = fmt.Sprintf("after seq %d (%s)", before.seq, v.where(before))
	}
	genuine := false
	if e.seq == 1 {
		genuine = e.noPrev
	} else if idx := bySeq[e.seq-1]; len(idx) > 0 && !e.noPrev && !e.badLinks {
		genuine = e.prev == v.entries[idx[0]].hash
	}
	if genuine {
		v.add(e.file, e.line, e.seq, Reordered, "out of order: found %s", where)
		return
	}
	v.add(e.file, e.line, e.seq, Inserted, "out of order and not linked to seq %d: found %s", e.seq-1, where)
}

// gap reports the seqs between cur and e that appear nowhere, unless as
// many unreadable lines stand in their place (reported as changed).
func (v *verifier) gap(e *entry, cur uint64, unreadable int, bySeq map[uint64][]int) {
	// The seqs present in the gap (reordered elsewhere) are few; count them.
	var present []uint64
	if e.seq-cur-1 <= uint64(len(bySeq)) {
		for s := cur + 1; s < e.seq; s++ {
			if len(bySeq[s]) > 0 {
				present = append(present, s)
			}
		}
	} else {
		for s := range bySeq {
			if s > cur && s < e.seq {
				present = append(present, s)
			}
		}
		sort.Slice(present, func(i, j int) bool { return present[i] < present[j] })
	}
	missing := e.seq - cur - 1 - uint64(len(present))
	if missing == 0 || missing <= uint64(unreadable) {
		return
	}
	// Ranges of missing seqs.
	var ranges []string
	from := cur + 1
	for _, s := range append(present, e.seq) {
		if s > from {
			if s-1 == from {
				ranges = append(ranges, strconv.FormatUint(from, 10))
			} else {
				ranges = append(ranges, fmt.Sprintf("%d–%d", from, s-1))
			}
		}
		from = s + 1
	}
	what := "records"
	if missing == 1 {
		what = "record"
	}
	v.add(e.file, e.line, e.seq, Removed, "%d %s missing before it: seq %s", missing, what, strings.Join(ranges, ", "))
}
