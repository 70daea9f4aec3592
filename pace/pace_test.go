package pace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/runner"
)

var _ runner.Pace = (*Book)(nil)

var opt = Options{Floor: 2 * time.Second, KeygenFloor: 10 * time.Second, Learn: true}

// TestTimeoutLearned: the floor until MinSamples, then Factor × the slowest
// recent work time when that is longer; never below the floor.
func TestTimeoutLearned(t *testing.T) {
	b, _ := Open("", opt)
	if got := b.Timeout("3B01", KindKeygen); got != 10*time.Second {
		t.Fatalf("unknown model: %v, want the keygen floor", got)
	}
	for i, d := range []time.Duration{8 * time.Second, 9 * time.Second} {
		b.Observe("3B01", KindKeygen, d)
		if got := b.Timeout("3B01", KindKeygen); got != 10*time.Second {
			t.Fatalf("after %d samples: %v, want the floor", i+1, got)
		}
	}
	b.Observe("3B01", KindKeygen, 7*time.Second)
	if got := b.Timeout("3B01", KindKeygen); got != 27*time.Second {
		t.Errorf("slow card: %v, want 3 × 9 s", got)
	}
	for range 3 {
		b.Observe("3B02", KindKeygen, 30*time.Millisecond) // an EC key on a fast card
	}
	if got := b.Timeout("3B02", KindKeygen); got != 10*time.Second {
		t.Errorf("fast card: %v, want the floor", got)
	}
	if got := b.Timeout("3B01", "init_profile"); got != 2*time.Second {
		t.Errorf("other kind: %v, want the plain floor", got)
	}
	fixed, _ := Open("", Options{Floor: time.Second, KeygenFloor: 10 * time.Second})
	for range 5 {
		fixed.Observe("3B01", KindKeygen, time.Minute)
	}
	if got := fixed.Timeout("3B01", KindKeygen); got != 10*time.Second {
		t.Errorf("learn off: %v, want the floor", got)
	}
	if d, ok := fixed.Expect("3B01", KindKeygen); !ok || d != time.Minute {
		t.Errorf("learn off still learns the ETA: %v %v", d, ok)
	}
}

// TestExpectFollows: the expected time follows a card model that slows
// down within a few jobs (within 10 % after 7).
func TestExpectFollows(t *testing.T) {
	b, _ := Open("", opt)
	if _, ok := b.Expect("M", "keygen"); ok {
		t.Fatal("expect known before any observation")
	}
	for range 5 {
		b.Observe("M", "keygen", time.Second)
	}
	for range 7 {
		b.Observe("M", "keygen", 5*time.Second)
	}
	d, _ := b.Expect("M", "keygen")
	if d < 4500*time.Millisecond || d > 5*time.Second {
		t.Errorf("expect %v after the card slowed to 5 s", d)
	}
}

// TestSaveOpen: what was learned survives a restart; a broken file is an
// error that names it.
func TestSaveOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pace.json")
	b, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{4, 5, 6} {
		b.Observe("3B8F80", KindKeygen, d*time.Second)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Timeout("3B8F80", KindKeygen); got != 18*time.Second {
		t.Errorf("after reopening: %v, want 18 s", got)
	}
	if e := c.Entries(); len(e) != 1 || e[0].N != 3 || e[0].Model != "3B8F80" || e[0].Kind != KindKeygen {
		t.Errorf("entries %+v", e)
	}
	// A broken file (a power loss) is moved aside; the book starts empty.
	broken := []byte(`{"version":1,"stats":{"x/keygen":{"n":1,"mean_s":1,"recent_s":[-1]}}}`)
	os.WriteFile(path, broken, 0o600)
	d, err := Open(path, opt)
	if err != nil || d.Discarded == nil || !strings.Contains(d.Discarded.Error(), path) || len(d.Entries()) != 0 {
		t.Fatalf("broken file: %v, discarded %v, %d entries", err, d.Discarded, len(d.Entries()))
	}
	if b, _ := os.ReadFile(path + ".broken"); string(b) != string(broken) {
		t.Errorf("broken file not kept aside: %q", b)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("broken file still in place: %v", err)
	}
}

// TestBounded: a stream of unknown card models cannot grow the book
// without bound.
func TestBounded(t *testing.T) {
	b, _ := Open("", opt)
	for i := range 3 * maxModels {
		b.Observe(strings.Repeat("A", i%7)+string(rune('0'+i%10))+string(rune(i)), "keygen", time.Second)
	}
	if n := len(b.Entries()); n > maxModels {
		t.Errorf("%d entries, want at most %d", n, maxModels)
	}
}

// FuzzOpen: any file opens or is refused; a book that opens never gives a
// timeout below the floor.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version":1,"stats":{"3B01/keygen":{"n":3,"mean_s":2,"recent_s":[1,2,3]}}}`))
	f.Add([]byte(`{"version":1,"stats":{"/":null}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "p.json")
		os.WriteFile(path, data, 0o600)
		b, err := Open(path, opt)
		if err != nil {
			return
		}
		for _, e := range b.Entries() {
			floor := opt.Floor
			if e.Kind == KindKeygen {
				floor = opt.KeygenFloor
			}
			if e.Timeout < floor {
				t.Fatalf("timeout %v below floor for %+v", e.Timeout, e)
			}
		}
	})
}
