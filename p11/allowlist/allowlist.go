// Package allowlist is the PKCS#11 module allow-list: the one rule, used by
// the agent before it accepts a job, by the runner before any card I/O and
// by package p11 before it loads a library (docs/config.md, [pkcs11]
// module). It is pure Go with no cgo, so the agent can use it without
// importing the PKCS#11 adapter.
package allowlist

import (
	"path/filepath"
	"strings"
)

// Modules lists the modules a description may name. An entry with a path
// allows that cleaned absolute path only; a bare file name allows only the
// same bare name, which the system loader resolves in its own directories.
// A bare name never allows a path and a path never allows a bare name: a
// description naming /usr/lib/softhsm/libsofthsm2.so is refused by a list
// that says libsofthsm2.so, whichever part of the program asks.
type Modules []string

// Allows reports whether module may be loaded. It does not touch the file.
func (l Modules) Allows(module string) bool {
	if module == "" {
		return false
	}
	if hasPath(module) {
		if !filepath.IsAbs(module) {
			return false
		}
		p := filepath.Clean(module)
		for _, a := range l {
			if hasPath(a) && filepath.Clean(a) == p {
				return true
			}
		}
		return false
	}
	for _, a := range l {
		if !hasPath(a) && a == module {
			return true
		}
	}
	return false
}

func hasPath(s string) bool { return strings.ContainsAny(s, `/\`) }
