package agent

import (
	"io/fs"
	"path"
	"runtime"
	"strconv"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/runner"
)

// checkModules refuses a job whose description names a PKCS#11 module that
// is not on the allow-list, before the job is journaled and before the
// runner (and so any card or library) is reached. It reads the description
// as the runner does — the one .dsz opener, the description parser, the
// platform's library key — and applies the one
// allow-list rule, so the agent and the runner cannot disagree. A
// description that does not parse is left to the runner, which refuses it
// with its positions.
func (s *Server) checkModules(job *runner.Job) *api.JobError {
	name, text := "job.dsc", job.Description
	var files fs.FS
	if len(job.DSZ) > 0 {
		b, err := dsc.OpenDSZ(job.DSZ)
		if err != nil {
			return &api.JobError{Code: api.CodeInvalidDescription, Message: "opening the .dsz: " + err.Error()}
		}
		name, text, files = path.Base(b.Name), b.Description, b
	}
	platform := dsc.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	desc, _ := dsc.Load(name, text, dsc.CheckOptions{Platform: platform, Files: files, MissingFiles: dsc.SeverityWarning})
	if desc == nil {
		return nil
	}
	v := desc.Settings.Library(platform)
	if v == nil {
		return nil
	}
	// The runner loads the library key's value as written (plan.Module).
	mod := v.Text
	if s.cfg.AllowedModules.Allows(mod) {
		return nil
	}
	return &api.JobError{Code: api.CodeModuleNotAllowed, Key: v.Key, File: v.Pos.File, Line: v.Pos.Line, Column: v.Pos.Col,
		Message: "PKCS#11 module " + strconv.Quote(mod) + " is not on the agent's allow-list ([pkcs11] module)"}
}
