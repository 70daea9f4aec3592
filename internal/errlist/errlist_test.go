package errlist

import (
	"strconv"
	"strings"
	"testing"
)

func TestJoin(t *testing.T) {
	itoa := func(i int) string { return "e" + strconv.Itoa(i) }
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "e0"},
		{10, "e0\ne1\ne2\ne3\ne4\ne5\ne6\ne7\ne8\ne9"},
		{13, "e0\ne1\ne2\ne3\ne4\ne5\ne6\ne7\ne8\ne9\n(and 3 more)"},
	} {
		items := make([]int, tc.n)
		for i := range items {
			items[i] = i
		}
		if got := Join(items, itoa); got != tc.want {
			t.Errorf("Join(%d items) = %q, want %q", tc.n, got, tc.want)
		}
		if strings.Count(Join(items, itoa), "\n") > Max {
			t.Errorf("Join(%d items) prints more than %d lines", tc.n, Max+1)
		}
	}
}
