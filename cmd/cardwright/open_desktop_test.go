package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/gui/traytest"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestOpenDesktop: with `cardwright desktop` running on the stack's Xvfb
// next to a tray host (so no window is shown), `cardwright open` with a
// cardwright: URI — options after the scheme included, which are ignored —
// brings its status window on screen through the agent, and starts no
// second agent.
func TestOpenDesktop(t *testing.T) {
	s := stacktest.Require(t)
	display := requireX(t, s)
	h := traytest.Start(t)
	addr := closedAddr(t)
	cfg := filepath.Join(t.TempDir(), "cardwright.cfg")
	if err := os.WriteFile(cfg, []byte("[server]\nlisten = "+addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDesktop(t, s, display, desktopOptions{Args: []string{"--fake-runner", "--config", cfg, "--listen", addr}, Bus: h.Address()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.WaitItem(ctx); err != nil {
		t.Fatalf("no tray item: %v", err)
	}
	if w := windows(t, display, statusWindowName); len(w) != 0 {
		t.Fatalf("status window %v shown before open", w)
	}

	open := exec.Command(desktopBinary(t, s), "open", "cardwright:--config=/nonexistent.cfg")
	open.Env = append(withoutEnv(os.Environ(), "DISPLAY", config.EnvVar), "DISPLAY="+display, config.EnvVar+"="+cfg)
	out, err := open.CombinedOutput()
	if err != nil {
		t.Fatalf("cardwright open: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "the desktop app of the agent on "+addr+" is in front") {
		t.Errorf("cardwright open said %q", out)
	}
	win := waitWindow(t, display, statusWindowName)
	onScreen(t, display, win)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.Logs(), `"msg":"desktop app raised"`) {
		if time.Now().After(deadline) {
			t.Fatal(`the agent logged no "desktop app raised"`)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(d.Logs(), `"msg":"agent ready"`); n != 1 {
		t.Errorf("%d agents announced themselves", n)
	}
}
