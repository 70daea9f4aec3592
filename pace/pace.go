// Package pace learns how long each kind of step takes on each card model,
// and from that gives every step a timeout and every job an ETA
// (spec/station.md "Slow cards"). Real cards take 2–69 s on average to
// generate an RSA-2048 key, with tails to 146 s, and EC keys in well under
// a second (research/anchors_turn2.md §4): one fixed timeout is either too
// short for the slow card or hides a stuck fast one.
//
// A Book implements runner.Pace. What it learned is kept in a small JSON
// file so that a station restarted in the middle of a shift keeps it.
package pace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Options are a Book's rules.
type Options struct {
	// Floor is the shortest timeout of any step, KeygenFloor of a key
	// generation ("keygen" steps): [timeouts] floor, keygen_floor.
	Floor, KeygenFloor time.Duration
	// Learn false keeps the floors as fixed timeouts ([timeouts] learn);
	// the ETA is still learned.
	Learn bool
}

// Rules of learning. A timeout is Factor times the slowest of the last
// Window observations, once MinSamples are known, and never below the
// floor. The expected time is an exponentially weighted mean (weight Alpha
// for the newest), which follows a card model that slows down (a card
// warming up, a reader with a longer cable) within a few jobs.
const (
	Window     = 32
	MinSamples = 3
	Factor     = 3.0
	Alpha      = 0.3
	KindKeygen = "keygen" // runner.KindKeygen: the step kind with its own floor
	maxModels  = 256      // models × kinds kept; the oldest used go first
)

// stat is what is known of one kind of step on one card model.
type stat struct {
	N      int       `json:"n"`
	Mean   float64   `json:"mean_s"`   // EWMA of the work time, seconds
	Recent []float64 `json:"recent_s"` // the last Window work times, oldest first
	Used   time.Time `json:"used"`
}

func (s *stat) observe(d time.Duration, now time.Time) {
	x := d.Seconds()
	if s.N == 0 {
		s.Mean = x
	} else {
		s.Mean = Alpha*x + (1-Alpha)*s.Mean
	}
	s.N++
	s.Recent = append(s.Recent, x)
	if len(s.Recent) > Window {
		s.Recent = s.Recent[len(s.Recent)-Window:]
	}
	s.Used = now
}

func (s *stat) slowest() float64 {
	m := 0.0
	for _, x := range s.Recent {
		m = math.Max(m, x)
	}
	return m
}

// Book learns step times. It is safe for concurrent use.
type Book struct {
	opt  Options
	path string // "" keeps nothing
	// Discarded is set when Open found a broken file and started again;
	// callers log it as a warning.
	Discarded error

	mu    sync.Mutex
	stats map[string]*stat // model + "\x00" + kind
	dirty bool
	saved time.Time
}

// file is the persisted form.
type file struct {
	Version int              `json:"version"`
	Stats   map[string]*stat `json:"stats"` // "model/kind"
}

// Open returns a book that keeps what it learns in path ("" keeps nothing),
// reading what is there. A missing file is an empty book. A file that
// cannot be read is an error; a broken one (a power loss mid-write on a
// file system that reordered the rename) is a cache lost, not a reason to
// stop a station: it is moved aside to path + ".broken", the book starts
// empty, and Open says so in Book.Discarded.
func Open(path string, opt Options) (*Book, error) {
	b := &Book{opt: opt, path: path, stats: map[string]*stat{}}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading learned timings: %w", err)
	}
	stats, err := decode(data)
	if err != nil {
		b.Discarded = fmt.Errorf("learned timings %s: %w; moved aside to %s.broken, starting again", path, err, path)
		if rerr := os.Rename(path, path+".broken"); rerr != nil {
			return nil, fmt.Errorf("moving aside broken learned timings: %w", rerr)
		}
		return b, nil
	}
	b.stats = stats
	return b, nil
}

// errBroken says what is wrong with a timing file.
var errBroken = errors.New("not a version 1 timing file")

func decode(data []byte) (map[string]*stat, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", errBroken, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%w: version %d", errBroken, f.Version)
	}
	stats := map[string]*stat{}
	for k, s := range f.Stats {
		model, kind, ok := splitKey(k)
		if !ok || s == nil || s.N < 0 || len(s.Recent) > Window || !finite(s.Mean) {
			return nil, fmt.Errorf("%w: bad entry %q", errBroken, k)
		}
		for _, x := range s.Recent {
			if !finite(x) || x < 0 {
				return nil, fmt.Errorf("%w: bad entry %q", errBroken, k)
			}
		}
		stats[model+"\x00"+kind] = s
	}
	return stats, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func splitKey(k string) (model, kind string, ok bool) {
	i := len(k) - 1
	for i >= 0 && k[i] != '/' {
		i--
	}
	if i <= 0 || i == len(k)-1 {
		return "", "", false
	}
	return k[:i], k[i+1:], true
}

func (b *Book) floor(kind string) time.Duration {
	if kind == KindKeygen {
		return b.opt.KeygenFloor
	}
	return b.opt.Floor
}

// Timeout implements runner.Pace: the floor until MinSamples steps of this
// kind ended well on this model, then Factor × the slowest of the recent
// ones when that is longer.
func (b *Book) Timeout(model, kind string) time.Duration {
	floor := b.floor(kind)
	if !b.opt.Learn {
		return floor
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats[model+"\x00"+kind]
	if s == nil || s.N < MinSamples {
		return floor
	}
	learned := Factor * s.slowest()
	if learned > maxTimeout.Seconds() {
		return maxTimeout
	}
	return max(floor, time.Duration(learned*float64(time.Second)))
}

// maxTimeout bounds a learned timeout: a day (the longest floor allowed).
const maxTimeout = 24 * time.Hour

// Expect implements runner.Pace: the weighted mean work time.
func (b *Book) Expect(model, kind string) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats[model+"\x00"+kind]
	if s == nil || s.N == 0 {
		return 0, false
	}
	return time.Duration(s.Mean * float64(time.Second)), true
}

// Observe implements runner.Pace. The file is written at most once every
// few seconds (and by Save).
func (b *Book) Observe(model, kind string, work time.Duration) {
	now := time.Now()
	b.mu.Lock()
	k := model + "\x00" + kind
	s := b.stats[k]
	if s == nil {
		b.evict()
		s = &stat{}
		b.stats[k] = s
	}
	s.observe(work, now)
	b.dirty = true
	due := b.path != "" && now.Sub(b.saved) > 5*time.Second
	b.mu.Unlock()
	if due {
		b.Save() // a failed save is tried again on the next observation
	}
}

// evict drops the least recently used entry when the book is full, so a
// stream of unknown cards cannot grow it without bound; b.mu held.
func (b *Book) evict() {
	if len(b.stats) < maxModels {
		return
	}
	var oldest string
	for k, s := range b.stats {
		if oldest == "" || s.Used.Before(b.stats[oldest].Used) {
			oldest = k
		}
	}
	delete(b.stats, oldest)
}

// Save writes what was learned (atomically: a temporary file renamed over
// the old one).
func (b *Book) Save() error {
	if b.path == "" {
		return nil
	}
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return nil
	}
	f := file{Version: 1, Stats: map[string]*stat{}}
	for k, s := range b.stats {
		c := *s
		c.Recent = append([]float64(nil), s.Recent...)
		f.Stats[joinKey(k)] = &c
	}
	b.dirty, b.saved = false, time.Now()
	b.mu.Unlock()
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return fmt.Errorf("saving learned timings: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.path), ".pace-*")
	if err != nil {
		b.markDirty()
		return fmt.Errorf("saving learned timings: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync() // the data before the rename, so a power loss leaves the old file or the new
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), b.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		b.markDirty()
		return fmt.Errorf("saving learned timings: %w", err)
	}
	return nil
}

func (b *Book) markDirty() {
	b.mu.Lock()
	b.dirty = true
	b.mu.Unlock()
}

func joinKey(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i] + "/" + k[i+1:]
		}
	}
	return k
}

// Entry is what the book knows of one kind of step on one card model, for
// reports (cardwright selftest, docs).
type Entry struct {
	Model, Kind string
	N           int
	Expect      time.Duration
	Timeout     time.Duration
}

// Entries lists what the book knows, by model then kind.
func (b *Book) Entries() []Entry {
	b.mu.Lock()
	var keys []string
	for k := range b.stats {
		keys = append(keys, k)
	}
	b.mu.Unlock()
	sort.Strings(keys)
	var out []Entry
	for _, k := range keys {
		model, kind, _ := splitKey(joinKey(k))
		e := Entry{Model: model, Kind: kind, Timeout: b.Timeout(model, kind)}
		e.Expect, _ = b.Expect(model, kind)
		b.mu.Lock()
		e.N = b.stats[k].N
		b.mu.Unlock()
		out = append(out, e)
	}
	return out
}
