package certfilter

import (
	"fmt"
	"sort"

	"github.com/cardwright/cardwright/internal/errlist"
)

// Error is one problem in a filter: where it is (line and column, 1-based,
// columns counting bytes) and the JSON path of the offending object or
// member, such as value[2].value[0].op. The root object's path is empty and
// prints as "(root)".
type Error struct {
	Line, Col int
	Offset    int // byte offset in the input
	Path      string
	Msg       string
}

func (e *Error) Error() string {
	p := e.Path
	if p == "" {
		p = "(root)"
	}
	return fmt.Sprintf("%d:%d: %s: %s", e.Line, e.Col, p, e.Msg)
}

func newError(src []byte, off int, path, msg string) *Error {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, b := range src[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &Error{Line: line, Col: col, Offset: off, Path: path, Msg: msg}
}

// ErrorList is every problem found in a filter, sorted by position. Parse
// returns it (as error) when the filter is malformed.
type ErrorList []*Error

func (l ErrorList) Error() string {
	return errlist.Join(l, (*Error).Error)
}

// Unwrap lets errors.As find the individual errors.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Offset != l[j].Offset {
			return l[i].Offset < l[j].Offset
		}
		return l[i].Path < l[j].Path
	})
}
