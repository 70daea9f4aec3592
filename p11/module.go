// Package p11 drives PKCS#11 modules (middleware libraries, HSMs, SoftHSM2):
// it loads a module once per process, lists slots and tokens, opens
// sessions, and performs the token operations a card job needs (token and
// PIN management, key pairs, certificate and data objects, PKCS#12 import,
// a crypto.Signer over a token key).
//
// It is the only package that imports github.com/miekg/pkcs11. It is an
// adapter: it never imports dsc, cpf, agent or runner, which convert their
// own types (ObjectCriteria, locations) to the ones declared here.
//
// Errors keep the module's CKR_* value in the chain, so callers can test
// errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)); PIN failures are a
// *PINError carrying what the token's flags say about the retries left.
package p11

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// Sentinels for the ways loading a module fails; a *ModuleError wraps one.
var (
	// ErrNotAllowed: the path is not on the caller's allow-list. The file
	// was not opened.
	ErrNotAllowed = errors.New("module is not on the allow-list")
	// ErrModuleMissing: no file at the path.
	ErrModuleMissing = errors.New("module file not found")
	// ErrNotModule: the file could not be loaded as a shared library, or
	// it exports no C_GetFunctionList (PKCS#11 v2.40 §5.2).
	ErrNotModule = errors.New("not a PKCS#11 module (cannot load it, or it has no C_GetFunctionList)")
	// ErrInitialize: C_Initialize returned an error.
	ErrInitialize = errors.New("initialising the module (C_Initialize)")
)

// ModuleError is a failure to load or initialise a module. It names the
// path; Kind is one of the sentinels above, or ErrArchitecture (pe.go),
// and Err the cause (a pkcs11.Error for ErrInitialize, a *fs.PathError for
// ErrModuleMissing, an *ArchError for ErrArchitecture).
type ModuleError struct {
	Path string
	Kind error
	Err  error
}

func (e *ModuleError) Error() string {
	var arch *ArchError
	if errors.As(e.Err, &arch) {
		return arch.Error() // it names the path and what to install
	}
	if e.Err == nil {
		return fmt.Sprintf("loading PKCS#11 module %s: %v", e.Path, e.Kind)
	}
	return fmt.Sprintf("loading PKCS#11 module %s: %v: %v", e.Path, e.Kind, e.Err)
}

// Unwrap gives both the kind and the cause to errors.Is and errors.As.
func (e *ModuleError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Module is a loaded and initialised PKCS#11 module. It is safe for
// concurrent use; sessions are not (see Session).
type Module struct {
	path string // as resolved: absolute, symlinks evaluated
	ctx  *pkcs11.Ctx

	// initMu serialises C_InitToken and the slot listing around it: two
	// goroutines must not pick the same free slot.
	initMu sync.Mutex

	// logins is this process's login bookkeeping per token (login.go).
	loginsMu sync.Mutex
	logins   map[tokenKey]*tokenLogin
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*Module{}
)

// Load returns the module at path, loading and initialising it on the first
// call in the process (C_Initialize with CKF_OS_LOCKING_OK, PKCS#11 v2.40
// §5.4). allow (allowlist.Modules.Allows, or Trusted) is asked first with
// the path exactly as given; when it says
// no (or is nil), Load returns ErrNotAllowed without touching the file. A
// module an operator names on the command line is passed with an allow
// function that says yes.
//
// A module stays loaded until the process ends: C_Finalize would end the
// sessions of every other user of the module in this process.
func Load(path string, allow func(path string) bool) (*Module, error) {
	if allow == nil || !allow(path) {
		return nil, &ModuleError{Path: path, Kind: ErrNotAllowed}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &ModuleError{Path: path, Kind: ErrModuleMissing, Err: err}
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &ModuleError{Path: path, Kind: ErrModuleMissing, Err: err}
		}
		return nil, &ModuleError{Path: path, Kind: ErrNotModule, Err: err}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, &ModuleError{Path: path, Kind: ErrModuleMissing, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &ModuleError{Path: path, Kind: ErrNotModule, Err: fmt.Errorf("%s is not a regular file", real)}
	}

	if runtime.GOOS == "windows" {
		if err := checkArch(path, real, runtime.GOARCH); err != nil {
			return nil, err
		}
	}

	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m, ok := modules[real]; ok {
		return m, nil
	}
	ctx := pkcs11.New(real) // dlopen + C_GetFunctionList; nil when either fails
	if ctx == nil {
		return nil, &ModuleError{Path: path, Kind: ErrNotModule}
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		// Leave the library mapped: unloading a library whose
		// initialisation half ran is riskier than the memory it holds.
		return nil, &ModuleError{Path: path, Kind: ErrInitialize, Err: err}
	}
	m := &Module{path: real, ctx: ctx}
	modules[real] = m
	return m, nil
}

// Path is the module's resolved file path.
func (m *Module) Path() string { return m.path }

// ModuleInfo is C_GetInfo's answer.
type ModuleInfo struct {
	Cryptoki       string // e.g. "2.40"
	Manufacturer   string
	Description    string
	LibraryVersion string
}

// Info calls C_GetInfo.
func (m *Module) Info() (ModuleInfo, error) {
	i, err := m.ctx.GetInfo()
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("getting module info: %w", err)
	}
	return ModuleInfo{
		Cryptoki:       fmt.Sprintf("%d.%d", i.CryptokiVersion.Major, i.CryptokiVersion.Minor),
		Manufacturer:   i.ManufacturerID,
		Description:    i.LibraryDescription,
		LibraryVersion: fmt.Sprintf("%d.%d", i.LibraryVersion.Major, i.LibraryVersion.Minor),
	}, nil
}

// Library keys of an encoding description that name a PKCS#11 module.
const (
	KeyLibrary          = "PKCS11Library"
	KeyLibraryWindows32 = "PKCS11LibraryWindows32"
	KeyLibraryWindows64 = "PKCS11LibraryWindows64"
	KeyLibraryLinux     = "PKCS11LibraryLinux"
	KeyLibraryMac       = "PKCS11LibraryMac"
)

// ErrNoLibrary: a description names no module for the platform.
var ErrNoLibrary = errors.New("no PKCS#11 library for this platform")

// ResolveLibrary picks the module a description names for a platform (GOOS,
// GOARCH): the platform's own key when set, else PKCS11Library. keys maps
// key names (case-insensitive) to values. It does no I/O: the result still
// goes through Load and its allow-list.
func ResolveLibrary(keys map[string]string, goos, goarch string) (string, error) {
	get := func(name string) string {
		for k, v := range keys {
			if strings.EqualFold(k, name) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	var specific string
	switch goos {
	case "windows":
		specific = KeyLibraryWindows64
		if goarch == "386" || goarch == "arm" {
			specific = KeyLibraryWindows32
		}
	case "linux":
		specific = KeyLibraryLinux
	case "darwin":
		specific = KeyLibraryMac
	}
	if specific != "" {
		if v := get(specific); v != "" {
			return v, nil
		}
	}
	if v := get(KeyLibrary); v != "" {
		return v, nil
	}
	if specific == "" {
		return "", fmt.Errorf("resolving %s for %s/%s: %w", KeyLibrary, goos, goarch, ErrNoLibrary)
	}
	return "", fmt.Errorf("resolving %s for %s/%s: neither %s nor %s is set: %w", KeyLibrary, goos, goarch, specific, KeyLibrary, ErrNoLibrary)
}

// ResolveLibraryHere is ResolveLibrary for the running platform.
func ResolveLibraryHere(keys map[string]string) (string, error) {
	return ResolveLibrary(keys, runtime.GOOS, runtime.GOARCH)
}

// Trusted allows every path: for a module an operator names on the command
// line.
func Trusted(string) bool { return true }
