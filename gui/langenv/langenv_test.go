package langenv

import (
	"slices"
	"testing"
)

func TestEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		get  func(string) string
		lang string
		want []string
	}{
		{"OS locale kept", env("LANG", "de_DE.UTF-8"), "", nil},
		{"language over a real locale", env("LANG", "en_US.UTF-8"), "de", []string{"LANGUAGE=de"}},
		{"C.UTF-8 reads LANGUAGE", env("LANG", "C.UTF-8"), "sv", []string{"LANGUAGE=sv"}},
		{"plain C needs a messages locale", env("LANG", "C"), "de", []string{"LANGUAGE=de", "LC_MESSAGES=C.UTF-8"}},
		{"nothing set", env(), "de", []string{"LANGUAGE=de", "LC_MESSAGES=C.UTF-8"}},
		{"LC_ALL=POSIX wins over LC_MESSAGES", env("LC_ALL", "POSIX"), "sv", []string{"LANGUAGE=sv", "LC_ALL=C.UTF-8"}},
	} {
		if got := Env(tc.get, tc.lang); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
