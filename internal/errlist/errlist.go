// Package errlist prints lists of positioned errors the one way the house
// style asks for: the caller sorts them, at most Max are spelled out, one a
// line, then how many were left out. Parsers of every format (dsc, cpf,
// certfilter, config) share it so that their messages read alike.
package errlist

import (
	"strconv"
	"strings"
)

// Max is how many items Join spells out.
const Max = 10

// Join prints the first Max items with line, one a line, and "(and N more)"
// when items were left out.
func Join[T any](items []T, line func(T) string) string {
	var b strings.Builder
	for i, it := range items {
		if i == Max {
			b.WriteString("\n(and " + strconv.Itoa(len(items)-Max) + " more)")
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line(it))
	}
	return b.String()
}
