package dsc

import (
	"fmt"
	"strings"
)

// Platform is the operating system and architecture a job runs on, in Go's
// GOOS/GOARCH terms. It chooses among the PKCS11Library* keys.
type Platform struct {
	OS   string `json:"os"`   // GOOS: windows, linux, darwin, …
	Arch string `json:"arch"` // GOARCH: 386, amd64, arm64, …
}

// ParsePlatform parses "GOOS/GOARCH", e.g. "windows/386".
func ParsePlatform(s string) (Platform, error) {
	os, arch, ok := strings.Cut(s, "/")
	if !ok || os == "" || arch == "" || strings.ContainsAny(arch, "/ ") {
		return Platform{}, fmt.Errorf("platform %q: want GOOS/GOARCH, e.g. windows/386", s)
	}
	return Platform{OS: os, Arch: arch}, nil
}

// String returns "GOOS/GOARCH".
func (p Platform) String() string { return p.OS + "/" + p.Arch }

// IsZero reports whether no platform was given.
func (p Platform) IsZero() bool { return p.OS == "" && p.Arch == "" }

// is32 reports a 32-bit pointer size.
func (p Platform) is32() bool {
	switch p.Arch {
	case "386", "arm", "mips", "mipsle", "ppc", "wasm":
		return true
	}
	return false
}

// LibraryKeys returns the PKCS#11 library keys of s that apply to p, most
// specific first; the first present one wins (docs/dsc.md, Middleware).
func (s *Settings) LibraryKeys(p Platform) []*Value {
	var specific *Value
	switch p.OS {
	case "windows":
		if p.is32() {
			specific = s.PKCS11LibraryWindows32
		} else {
			specific = s.PKCS11LibraryWindows64
		}
	case "linux":
		specific = s.PKCS11LibraryLinux
	case "darwin":
		specific = s.PKCS11LibraryMac
	}
	return []*Value{specific, s.PKCS11Library}
}

// Library returns the PKCS#11 library key that applies to p, or nil.
func (s *Settings) Library(p Platform) *Value {
	for _, v := range s.LibraryKeys(p) {
		if v != nil {
			return v
		}
	}
	return nil
}

// libraryKeysFound lists the library keys present, as written.
func (s *Settings) libraryKeysFound() []string {
	var out []string
	for _, v := range []*Value{s.PKCS11Library, s.PKCS11LibraryWindows32, s.PKCS11LibraryWindows64, s.PKCS11LibraryLinux, s.PKCS11LibraryMac} {
		if v != nil {
			out = append(out, v.Key)
		}
	}
	return out
}
