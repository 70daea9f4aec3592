package depcheck

import "testing"

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, pattern string
		want       bool
	}{
		{"a/p11", "a/p11", true},
		{"a/p11/allowlist", "a/p11", false},
		{"a/p11/allowlist", "a/p11/...", true},
		{"a/p11", "a/p11/...", true},
		{"a/p11x", "a/p11/...", false},
		{"testing", "testing", true},
		{"testing/fstest", "testing", false},
	} {
		if got := match(tc.p, []string{tc.pattern}); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.p, tc.pattern, got, tc.want)
		}
	}
}
