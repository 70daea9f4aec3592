package agent

import (
	"archive/zip"
	"bufio"
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
)

// checkModules refuses a job whose description names a PKCS#11 module that
// is not on the allow-list, before the runner (and so any card or library)
// is touched. The runner checks again with the full description parser; this
// is a deliberately small scan of [Description] so the agent does not depend
// on the runner for the one check a hostile page would aim at.
func (s *Server) checkModules(job *Job) *api.JobError {
	text := job.Description
	if len(job.DSZ) > 0 {
		t, err := dscFromZip(job.DSZ)
		if err != nil {
			return &api.JobError{Code: api.CodeInvalidDescription, Message: "reading dsz: " + err.Error()}
		}
		text = t
	}
	mod, line := moduleOf(text, func(name string) (string, bool) {
		for k, v := range job.Fields {
			if strings.EqualFold(k, name) {
				return v.Reveal(), true
			}
		}
		return "", false
	})
	if mod == "" {
		return nil
	}
	if s.moduleAllowed(mod) {
		return nil
	}
	return &api.JobError{Code: api.CodeModuleNotAllowed, Key: "PKCS11Library", Line: line,
		Message: "PKCS#11 module " + strconv.Quote(mod) + " is not on the agent's allow-list"}
}

// dscFromZip returns the one .dsc in a .dsz.
func dscFromZip(b []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	var found *zip.File
	for _, f := range zr.File {
		if strings.EqualFold(filepath.Ext(f.Name), ".dsc") {
			if found != nil {
				return nil, errString("more than one .dsc in the container")
			}
			found = f
		}
	}
	if found == nil {
		return nil, errString("no .dsc in the container")
	}
	rc, err := found.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 8<<20))
}

type errString string

func (e errString) Error() string { return string(e) }

// moduleOf finds the PKCS#11 module the description names for this
// platform: PKCS11LibraryLinux (or …Mac), else PKCS11Library. A value
// starting with '#' is a literal; a bare name is a field's value.
func moduleOf(text []byte, field func(string) (string, bool)) (string, int) {
	specific := "pkcs11librarylinux"
	if runtime.GOOS == "darwin" {
		specific = "pkcs11librarymac"
	}
	var generic, spec string
	var gline, sline int
	inDesc := false
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			inDesc = strings.EqualFold(strings.Trim(l, "[] \t"), "description")
			continue
		}
		if !inDesc {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(v, "#"):
			v = v[1:]
		case v != "":
			if fv, ok := field(v); ok {
				v = fv
			}
		}
		switch k {
		case "pkcs11library":
			generic, gline = v, n
		case specific:
			spec, sline = v, n
		}
	}
	if spec != "" {
		return spec, sline
	}
	return generic, gline
}

// moduleAllowed: an absolute path must be on the list, or be a listed bare
// name inside a trusted directory; a bare name must be listed, by itself or
// as the base name of a listed path.
func (s *Server) moduleAllowed(mod string) bool {
	if strings.ContainsRune(mod, '/') {
		if !filepath.IsAbs(mod) {
			return false
		}
		mod = filepath.Clean(mod)
		for _, a := range s.cfg.AllowedModules {
			if a == mod {
				return true
			}
			if !strings.ContainsRune(a, '/') && a == filepath.Base(mod) {
				for _, d := range s.cfg.ModuleDirs {
					if filepath.Clean(d) == filepath.Dir(mod) {
						return true
					}
				}
			}
		}
		return false
	}
	for _, a := range s.cfg.AllowedModules {
		if a == mod || filepath.Base(a) == mod {
			return true
		}
	}
	return false
}
