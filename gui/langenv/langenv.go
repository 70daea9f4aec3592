// Package langenv chooses the language the desktop app's toolkit sees in
// the environment, before the toolkit reads it. Import it for its effect,
// from the binary that links Fyne.
//
// Fyne's lang package reads the locale while it is initialised; in a C
// locale with a code set ("C.UTF-8", Debian's default in containers and
// services) it cannot parse the language "C" and logs three "Fyne error"
// lines on every start of every command of the binary. Go initialises
// packages in import-path order once their imports are ready (Go spec,
// "Package initialization"); this package imports only the standard
// library and its path sorts before golang.org/x/text, which Fyne's lang
// needs, so its init runs first.
package langenv

import (
	"os"
	"strings"
)

func init() {
	if os.Getenv("LANGUAGE") == "" && isC(Effective(os.Getenv)) {
		// LANGUAGE names only the language of messages (gettext); the
		// C library's locale and code set stay as they are.
		os.Setenv("LANGUAGE", "en")
	}
}

// Effective is the locale that decides the language of messages: LC_ALL,
// else LC_MESSAGES, else LANG.
func Effective(getenv func(string) string) string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// isC reports whether loc is a C locale with a code set (C.UTF-8): one
// that names no language but is not "C" or "POSIX" themselves (which
// Fyne takes as "no locale" without complaint).
func isC(loc string) bool { return strings.HasPrefix(loc, "C.") }

// Env returns the environment variables that make the desktop app speak
// lang (en, de, sv; "" keeps the OS locale): LANGUAGE, which Fyne's locale
// lookup reads unless the locale is plain C or POSIX, and then a UTF-8 C
// locale for messages so that it does. The C library's character set is
// left alone (window titles keep their non-ASCII characters).
func Env(getenv func(string) string, lang string) []string {
	if lang == "" {
		return nil
	}
	env := []string{"LANGUAGE=" + lang}
	switch Effective(getenv) {
	case "C", "POSIX", "":
		if v := getenv("LC_ALL"); v != "" {
			env = append(env, "LC_ALL=C.UTF-8")
		} else {
			env = append(env, "LC_MESSAGES=C.UTF-8")
		}
	}
	return env
}
