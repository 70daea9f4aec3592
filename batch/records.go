// Package batch encodes a stack of cards, one record of field values per
// card, across several readers in parallel (spec/station.md "Batch"): the
// records are read and every one validated before any card I/O, each
// reader's worker waits for a card, runs the next record on it and waits
// for the card to leave, and a results file fsynced per line is the batch's
// journal, so a batch killed or cut off by a power loss resumes without
// encoding any record, or any card, twice.
package batch

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cardwright/cardwright/secret"
)

// Record is one card's field values.
type Record struct {
	N    int // record number, from 1, in file order
	Line int // line of the records file it starts on
	// Fields are the record's values. They are secrets by type: any of
	// them may be a PIN.
	Fields map[string]secret.Value
}

// Error is a problem at a place in an input file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorList is the problems found in the inputs, sorted by place; its
// message shows at most 10 (docs: "at most 10 printed, sorted").
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == 10 {
			fmt.Fprintf(&b, "\n(and %d more)", len(l)-10)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].File != l[j].File {
			return l[i].File < l[j].File
		}
		return l[i].Line < l[j].Line
	})
	return l
}

// err is l as an error, nil when empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l.sorted()
}

// ReadRecords reads a records file: CSV (name ending .csv) with a header
// row of field names, or JSON lines (any other name: .jsonl, .ndjson) of
// objects whose values are strings. Blank lines are skipped. Problems are
// an ErrorList of file:line errors.
func ReadRecords(name string, src []byte) ([]Record, error) {
	if strings.EqualFold(filepath.Ext(name), ".csv") {
		return ReadCSV(name, src)
	}
	return ReadJSONL(name, src)
}

// ReadCSV reads records from CSV with a header row of field names (RFC 4180,
// comma-separated; a UTF-8 byte-order mark is ignored).
func ReadCSV(name string, src []byte) ([]Record, error) {
	src = bytes.TrimPrefix(src, []byte("\uFEFF"))
	r := csv.NewReader(bytes.NewReader(src))
	r.ReuseRecord = false
	var errs ErrorList
	add := func(line int, format string, a ...any) {
		errs = append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf(format, a...)})
	}
	header, err := r.Read()
	if err == io.EOF {
		return nil, ErrorList{{File: name, Msg: "no header row of field names"}}
	}
	if err != nil {
		return nil, ErrorList{csvError(name, err)}
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "":
			add(1, "column %d has no field name", i+1)
		case seen[strings.ToLower(h)]:
			add(1, "field %q named twice", h)
		}
		seen[strings.ToLower(h)] = true
	}
	if len(errs) > 0 {
		return nil, errs.err()
	}
	var recs []Record
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvError(name, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the row is read; the next one may be good
			}
			break
		}
		line, _ := r.FieldPos(0)
		rec := Record{N: len(recs) + 1, Line: line, Fields: make(map[string]secret.Value, len(row))}
		for i, v := range row {
			rec.Fields[header[i]] = secret.New(v)
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 && len(errs) == 0 {
		add(0, "no records after the header row")
	}
	if err := errs.err(); err != nil {
		wipe(recs)
		return nil, err
	}
	return recs, nil
}

func csvError(name string, err error) *Error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Line, Msg: "reading CSV: " + pe.Err.Error()}
	}
	return &Error{File: name, Msg: "reading CSV: " + err.Error()}
}

// ReadJSONL reads records from JSON lines: one object of string values a
// line.
func ReadJSONL(name string, src []byte) ([]Record, error) {
	var (
		recs []Record
		errs ErrorList
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF"))
		}
		if len(b) == 0 {
			continue
		}
		fields, err := decodeObject(b)
		if err != nil {
			errs = append(errs, &Error{File: name, Line: line, Msg: err.Error()})
			continue
		}
		recs = append(recs, Record{N: len(recs) + 1, Line: line, Fields: fields})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &Error{File: name, Line: line + 1, Msg: "reading: " + err.Error()})
	}
	if len(recs) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{File: name, Msg: "no records"})
	}
	if err := errs.err(); err != nil {
		wipe(recs)
		return nil, err
	}
	return recs, nil
}

// decodeObject decodes one JSON object of string values, refusing a name
// given twice (JSON would keep the last silently).
func decodeObject(b []byte) (map[string]secret.Value, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	t, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("decoding the record: %w", err)
	}
	if t != json.Delim('{') {
		return nil, errors.New("a record must be a JSON object of field names and string values")
	}
	out := map[string]secret.Value{}
	fail := func(err error) (map[string]secret.Value, error) {
		for _, v := range out {
			v.Wipe()
		}
		return nil, err
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return fail(fmt.Errorf("decoding the record: %w", err))
		}
		k, _ := t.(string)
		if strings.TrimSpace(k) == "" {
			return fail(errors.New("a field has an empty name"))
		}
		if seen[strings.ToLower(k)] {
			return fail(fmt.Errorf("field %q given twice", k))
		}
		seen[strings.ToLower(k)] = true
		t, err = d.Token()
		if err != nil {
			return fail(fmt.Errorf("decoding field %q: %w", k, err))
		}
		v, ok := t.(string)
		if !ok {
			// The value itself is not quoted: it may be a PIN.
			return fail(fmt.Errorf("field %q: the value must be a string", k))
		}
		out[k] = secret.New(v)
	}
	if _, err := d.Token(); err != nil {
		return fail(fmt.Errorf("decoding the record: %w", err))
	}
	if _, err := d.Token(); err != io.EOF {
		return fail(errors.New("text after the record's object"))
	}
	return out, nil
}

func wipe(recs []Record) {
	for _, r := range recs {
		for _, v := range r.Fields {
			v.Wipe()
		}
	}
}
