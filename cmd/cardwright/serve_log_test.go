package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeLogRotation: the log file ([log] file) is renamed to .1 when the
// next line would pass the size limit, older files shift up to .keep and
// the oldest is dropped; no line is split or lost among the kept files;
// files are 0600; reopening appends.
func TestServeLogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "agent.log")
	const max, keep, lines = 1000, 3, 100
	r, err := newRotatingFile(path, max, keep)
	if err != nil {
		t.Fatal(err)
	}
	line := func(i int) string { return fmt.Sprintf("line %03d %s\n", i, strings.Repeat("x", 40)) } // 50 bytes
	for i := range lines / 2 {
		if _, err := r.Write([]byte(line(i))); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if r, err = newRotatingFile(path, max, keep); err != nil { // a restart appends
		t.Fatal(err)
	}
	for i := lines / 2; i < lines; i++ {
		if _, err := r.Write([]byte(line(i))); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	var all strings.Builder
	for _, name := range []string{path + ".3", path + ".2", path + ".1", path} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > max || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %d bytes, mode %v", name, st.Size(), st.Mode().Perm())
		}
		b, _ := os.ReadFile(name)
		all.Write(b)
	}
	if _, err := os.Stat(path + ".4"); !os.IsNotExist(err) {
		t.Errorf("%s.4 kept: %v", path, err)
	}
	// 20 lines fit in a file: the four files hold the last 80 lines in order.
	var want strings.Builder
	for i := lines - 80; i < lines; i++ {
		want.WriteString(line(i))
	}
	if all.String() != want.String() {
		t.Fatalf("kept lines:\n%s\nwant:\n%s", all.String(), want.String())
	}
}

// TestServeLogFile: with [log] file, `cardwright serve` writes JSON lines
// there; stderr gets only the address records (agent ready), as JSON too.
func TestServeLogFile(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log", "cardwright.log")
	cfg := writeTestFile(t, dir, "cardwright.cfg", "[log]\nfile = "+logFile+"\nlevel = debug\n")
	_, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0", "--journal", dir)
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, logs())
	}
	for _, l := range strings.Split(strings.TrimSpace(logs()), "\n") {
		if a, _ := serveAnnounced(l); a == "" {
			t.Errorf("stderr has more than the address record: %q", l)
		}
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var ready bool
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		ready = ready || m["msg"] == "agent ready"
	}
	if !ready {
		t.Fatalf("no \"agent ready\" in the log file:\n%s", b)
	}
}
