package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestNoToolkitNoiseInCLI: in Debian's default C.UTF-8 locale the
// commands of the default build (which links Fyne) print nothing of the
// toolkit's (gui/langenv sets the language before Fyne reads it).
func TestNoToolkitNoiseInCLI(t *testing.T) {
	bin := desktopBinary(t, stacktest.Require(t))
	for _, lang := range []string{"C.UTF-8", "C", ""} {
		cmd := exec.Command(bin, "version")
		cmd.Env = append(withoutEnv(os.Environ(), "LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE"), "LANG="+lang)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "Fyne") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("LANG=%q: cardwright version printed %q (%v), want its one line", lang, out, err)
		}
	}
}
