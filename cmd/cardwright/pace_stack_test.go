package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/pace"
	"github.com/cardwright/cardwright/pcsc"
)

// TestLearnedTimeoutOnStack (spec/station.md "Slow cards"): the own card
// made slow (bin/vcard --latency) runs an APDU-script job over and over
// through `cardwright encode`. After MinSamples jobs its learned timeout is
// longer than the [timeouts] floor, so a card that slows down further still
// finishes where the fixed floor (learn = no) ends the job with timeout;
// progress carries an ETA from the second job on.
func TestLearnedTimeoutOnStack(t *testing.T) {
	e := newStackEnv(t)
	reader := e.own[0]
	const apdus = 24
	script := strings.Repeat("00 CA 00 5A 00  => 9000\n", apdus) // GET DATA ICCSN
	writeTestFile(t, e.dir, "slow.apdu", script)
	dsc := writeTestFile(t, e.dir, "slow.dsc", "[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\nSW=\n\n[Description]\nApduFile=slow.apdu\nApduResponseCodesField=SW\n")
	learn := writeTestFile(t, e.dir, "learn.cfg", "[timeouts]\nfloor = 1\n")
	fixed := writeTestFile(t, e.dir, "fixed.cfg", "[timeouts]\nfloor = 1\nlearn = no\n")

	slowCard(t, e, reader, 25*time.Millisecond)
	etaRE := regexp.MustCompile(`\] ApduFile \(.*, about ([0-9.]+m?s) left\)`)
	job := func(cfg string) (int, time.Duration, string, string) {
		start := time.Now()
		code, stdout, stderr := e.encode("", "--dsc", dsc, "--config", cfg, "--reader", reader, "--json")
		return code, time.Since(start), stdout, stderr
	}
	for i := range pace.MinSamples + 1 {
		code, took, stdout, stderr := job(learn)
		if code != 0 {
			t.Fatalf("job %d on the slow card: exit %d\n%s\n%s", i+1, code, stdout, stderr)
		}
		m := etaRE.FindStringSubmatch(stderr)
		if i == 0 {
			if m != nil {
				t.Errorf("job 1: an ETA before anything was learned: %s", stderr)
			}
			continue
		}
		if m == nil {
			t.Fatalf("job %d: no ETA in the progress:\n%s", i+1, stderr)
		}
		eta, _ := time.ParseDuration(m[1])
		t.Logf("job %d: ETA %v at the script step, the whole encode took %v", i+1, eta, took)
		if eta < apdus*25*time.Millisecond {
			t.Errorf("job %d: ETA %v is shorter than the card's own latency (%d × 25 ms)", i+1, eta, apdus)
		}
	}
	book, err := pace.Open(filepath.Join(e.dir, "state", "cardwright", "pace.json"), pace.Options{Floor: time.Second, KeygenFloor: time.Second, Learn: true})
	if err != nil {
		t.Fatal(err)
	}
	var learned time.Duration
	for _, en := range book.Entries() {
		t.Logf("learned: %s %s n=%d expect %v timeout %v", en.Model, en.Kind, en.N, en.Expect, en.Timeout)
		if en.Kind == "apdu_script" {
			learned = en.Timeout
		}
	}
	if learned < 3*apdus*25*time.Millisecond {
		t.Fatalf("learned timeout of the script step %v, want at least 3 × %d × 25 ms", learned, apdus)
	}

	// The card slows down to twice that: about 1.2 s of work, over the
	// 1 s floor, under the learned timeout.
	slowCard(t, e, reader, 50*time.Millisecond)
	if code, took, stdout, stderr := job(learn); code != 0 {
		t.Fatalf("slower card with the learned timeout: exit %d after %v\n%s\n%s", code, took, stdout, stderr)
	}
	code, took, stdout, stderr := job(fixed)
	je := jobError(t, stdout)
	if code != exitFailure || je == nil || je.Code != "timeout" || je.Step != "ApduFile" {
		t.Fatalf("slower card with the fixed 1 s floor: exit %d after %v, error %+v, want timeout in ApduFile\n%s", code, took, je, stderr)
	}
	t.Logf("fixed floor: %s", je.Message)
}

// slowCard puts a fresh own card that sleeps latency before each APDU into
// OWN_1's reader, in place of the stack's card or of the slow card put
// there before. The stack's card comes back when the test ends.
func slowCard(t *testing.T, e *stackEnv, reader string, latency time.Duration) {
	t.Helper()
	if reader != e.s.Get(t, "READER_OWN_1") {
		t.Fatal("slowCard serves OWN_1 only")
	}
	if e.slow == nil {
		e.s.StopCard(t, reader) // put back at the end, after the cleanup below
	} else {
		e.slow()
	}
	cmd := exec.Command(filepath.Join(e.s.Root, "bin", "vcard"), "--port", e.s.Get(t, "PORT_OWN_1"),
		"--serial", e.s.Get(t, "SERIAL_OWN_1"), "--latency", latency.String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	e.slow = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(e.slow)
	deadline := time.Now().Add(10 * time.Second)
	for !cardAnswers(reader) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow card in %q does not answer", reader)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cardAnswers reports whether a card in reader answers SELECT MF.
func cardAnswers(reader string) bool {
	pc, err := pcsc.Open()
	if err != nil {
		return false
	}
	defer pc.Close()
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		return false
	}
	defer k.Close()
	_, err = k.Transmit([]byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00})
	return err == nil
}
