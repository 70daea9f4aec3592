package journal

import (
	"testing"

	"github.com/cardwright/cardwright/agent/api"
)

// TestBacklog: finished results count until their portal acknowledges
// them; running jobs and interrupted ones follow their state, also across a
// reopen.
func TestBacklog(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int) {
		t.Helper()
		if got, err := j.Backlog(); err != nil || got != n {
			t.Fatalf("backlog = %d, %v; want %d", got, err, n)
		}
	}
	want(0)
	a, _ := j.Begin("https://portal.example", "s1", "a", "R0")
	b, _ := j.Begin("https://portal.example", "s1", "b", "R0")
	if _, err := j.Begin("https://portal.example", "s1", "c", "R1"); err != nil {
		t.Fatal(err)
	}
	want(0) // all running
	if err := j.Finish(a, &api.Result{}); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(b, &api.Result{}); err != nil {
		t.Fatal(err)
	}
	want(2)
	if err := j.Ack("https://portal.example", "s1", "a"); err != nil {
		t.Fatal(err)
	}
	want(1)
	j.Close()
	if j, _, err = Open(dir); err != nil { // c is now interrupted
		t.Fatal(err)
	}
	defer j.Close()
	want(2)
}
