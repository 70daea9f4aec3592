package dsc

import (
	"fmt"
	"sort"

	"github.com/cardwright/cardwright/internal/errlist"
)

// Pos is a position in a description file. Line and Col are 1-based; Col
// counts bytes. The zero Pos means "no position".
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// IsValid reports whether the position has a line.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats the position as file:line:col (parts that are unknown are
// left out).
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		if s != "" {
			s += ":"
		}
		s += fmt.Sprintf("%d", p.Line)
		if p.Col > 0 {
			s += fmt.Sprintf(":%d", p.Col)
		}
	}
	if s == "" {
		s = "-"
	}
	return s
}

// MarshalText writes the position as String does, so JSON shows
// "file:line:col".
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p Pos) less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Severity tells errors from warnings.
type Severity uint8

const (
	// SeverityError makes a description unusable.
	SeverityError Severity = iota
	// SeverityWarning is reported but does not stop a job.
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// MarshalText writes "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one finding of the parser or checker: a position, a severity
// and a one-line reason.
type Diagnostic struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Msg      string   `json:"message"`
}

// String formats the diagnostic as "file:line:col: error: message".
func (d Diagnostic) String() string {
	return d.Pos.String() + ": " + d.Severity.String() + ": " + d.Msg
}

// Diagnostics is a list of findings. As an error (returned by Parse) it
// holds only errors; Check returns errors and warnings together.
type Diagnostics []Diagnostic

// Sort orders the diagnostics by position, errors before warnings at the
// same position.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Pos != ds[j].Pos {
			return ds[i].Pos.less(ds[j].Pos)
		}
		return ds[i].Severity < ds[j].Severity
	})
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns only the warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err returns the errors among ds as an error (sorted), or nil if there are
// none.
func (ds Diagnostics) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	errs.Sort()
	return errs
}

// Error prints at most 10 diagnostics, one a line, and how many were left
// out.
func (ds Diagnostics) Error() string {
	return errlist.Join(ds, Diagnostic.String)
}
