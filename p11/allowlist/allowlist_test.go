package allowlist

import "testing"

func TestModules(t *testing.T) {
	l := Modules{"/usr/lib/softhsm/libsofthsm2.so", "/opt/x/../y/lib.so", "opensc-pkcs11.so"}
	for mod, want := range map[string]bool{
		"/usr/lib/softhsm/libsofthsm2.so":            true,
		"/usr/lib/softhsm/./libsofthsm2.so":          true,
		"/opt/y/lib.so":                              true,
		"opensc-pkcs11.so":                           true,
		"libsofthsm2.so":                             false, // a bare name is not the listed path
		"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so": false, // nor is a path the listed bare name
		"usr/lib/softhsm/libsofthsm2.so":             false, // relative
		"../softhsm/libsofthsm2.so":                  false,
		"":                                           false,
		"/usr/lib/softhsm/libsofthsm2.so.evil":       false,
	} {
		if got := l.Allows(mod); got != want {
			t.Errorf("Allows(%q) = %v, want %v", mod, got, want)
		}
	}
	// The case: the configuration names the bare library, the
	// description its path.
	if (Modules{"libsofthsm2.so"}).Allows("/usr/lib/softhsm/libsofthsm2.so") {
		t.Error("a bare entry allowed a path")
	}
}
