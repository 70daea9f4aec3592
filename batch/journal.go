package batch

// journal.go: the results file, which is also the batch's journal
// (spec/station.md "Batch": resumable after a crash or power loss). One JSON
// object a line, each fsynced before the batch goes on: "batch" names the
// records and description it belongs to; "started" is written before a
// record's card I/O, naming the card; "done" after, with the result;
// "interrupted" when a resume finds a record started and never done. No
// field value that went in and no secret output is ever written. The file
// is locked while a batch has it open: two batches on one results file
// would encode the same records.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/audit"
	"github.com/cardwright/cardwright/internal/lockedfile"
)

// Journal events.
const (
	EventBatch       = "batch"
	EventStarted     = "started"
	EventDone        = "done"
	EventInterrupted = "interrupted"
)

// Entry is one line of the results file.
type Entry struct {
	Event  string    `json:"event"`
	Time   time.Time `json:"time"`
	Record int       `json:"record,omitempty"` // record number, from 1
	Line   int       `json:"line,omitempty"`   // the record's line in the records file
	Reader string    `json:"reader,omitempty"`
	Serial string    `json:"serial,omitempty"` // the card's ICCSN, hex
	// Result is "ok" or the error code of a done record; Message and Step
	// say what failed.
	Result  string `json:"result,omitempty"`
	Message string `json:"message,omitempty"`
	Step    string `json:"step,omitempty"`
	// Fields are the plain output fields of a done record: outputs the
	// card or the job produced, never a value the record gave.
	Fields map[string]string `json:"fields,omitempty"`
	Steps  []audit.Step      `json:"steps,omitempty"`
	MS     float64           `json:"ms,omitempty"` // the record's card time

	// The "batch" line: what the results belong to.
	Records     string `json:"records,omitempty"`     // audit.Digest of the records file
	Description string `json:"description,omitempty"` // audit.Digest of the .dsc or .dsz
	Total       int    `json:"total,omitempty"`
}

// OK reports whether a done entry succeeded.
func (e *Entry) OK() bool { return e.Result == "ok" }

// beforeCardIO are the codes of a job refused before it wrote to a card.
var beforeCardIO = map[string]bool{
	string(api.CodeNoCard): true, string(api.CodeBusy): true, string(api.CodeReaderUnavailable): true,
	string(api.CodeCardNotFound): true, string(api.CodeCardAmbiguous): true, string(api.CodeInvalidField): true,
}

// Retryable reports whether a done entry failed in a way that guarantees
// its card was not written to: a code refused before card I/O, or a
// failure in the job's "select" or "validate" step. Such a record may be
// encoded again (--retry-failed), on a new card.
func Retryable(e *Entry) bool {
	return e.Event == EventDone && !e.OK() && (beforeCardIO[e.Result] || e.Step == "select" || e.Step == "validate")
}

// State is what a results file says of the batch so far.
type State struct {
	Done map[int]*Entry // by record number
	// Interrupted are the records started and never done, by a run before
	// this one: reported, and not encoded again unless retried. Those the
	// file does not say so of yet have Event EventStarted (Batch.Run
	// marks them).
	Interrupted map[int]*Entry
	// Serials are the cards the batch has used (started on), hex, with the
	// record number: a card seen again is refused.
	Serials map[string]int
}

// Journal appends to a results file, each line fsynced.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// ErrOtherBatch means a results file belongs to other records or another
// description: resuming it would mix two batches.
var ErrOtherBatch = errors.New("the results file belongs to another batch")

// ErrInUse means another batch has the results file open.
var ErrInUse = errors.New("the results file is in use by another cardwright batch")

// OpenJournal opens the results file at path, creating it with head (an
// EventBatch entry) when absent or empty, and locks it (ErrInUse when
// another batch, in this process or another, has it). An existing file is
// read back: its head must name the same records and description; a last
// line cut off by a crash is dropped (the file is truncated before it).
// Records started and never done are in State.Interrupted; Batch.Run
// writes their "interrupted" lines.
func OpenJournal(path string, head Entry) (*Journal, *State, error) {
	head.Event = EventBatch
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the results file: %w", err)
	}
	if err := lockedfile.Lock(f); err != nil {
		f.Close()
		if errors.Is(err, lockedfile.ErrLocked) {
			return nil, nil, fmt.Errorf("%s: %w (wait for it to end, or give this batch another --results file)", path, ErrInUse)
		}
		return nil, nil, fmt.Errorf("locking the results file: %w", err)
	}
	j := &Journal{f: f, path: path}
	st, good, err := readState(path, f, &head)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	// Appends go after the last whole line.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("dropping the results file's cut-off last line: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("seeking in the results file: %w", err)
	}
	if good == 0 {
		if head.Time.IsZero() {
			head.Time = time.Now().UTC()
		}
		if err := j.Write(&head); err != nil {
			f.Close()
			return nil, nil, err
		}
		if err := lockedfile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("syncing the results file's folder: %w", err)
		}
	}
	return j, st, nil
}

// readState reads the entries of f. good is the length of its whole,
// well-formed lines.
func readState(path string, f *os.File, head *Entry) (*State, int64, error) {
	st := &State{Done: map[int]*Entry{}, Interrupted: map[int]*Entry{}, Serials: map[string]int{}}
	started := map[int]*Entry{}
	br := bufio.NewReader(f)
	var good int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			// A last line without its newline was cut off mid-write: the
			// record it told of is handled as if it were never written.
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("reading the results file: %w", err)
		}
		var e Entry
		if err := json.Unmarshal(bytes.TrimSpace(line), &e); err != nil {
			if _, perr := br.Peek(1); perr == io.EOF {
				break // the last line is torn
			}
			return nil, 0, &Error{File: path, Line: n, Msg: "not a results line: " + err.Error()}
		}
		if n == 1 {
			if e.Event != EventBatch {
				return nil, 0, &Error{File: path, Line: 1, Msg: "not a batch results file (no \"batch\" line first)"}
			}
			if e.Records != head.Records || e.Description != head.Description {
				return nil, 0, fmt.Errorf("%s: %w: the records file or the description changed since it was written (use another --results file)", path, ErrOtherBatch)
			}
			good += int64(len(line))
			continue
		}
		switch e.Event {
		case EventStarted:
			started[e.Record] = &e
			delete(st.Interrupted, e.Record)
			if e.Serial != "" {
				st.Serials[e.Serial] = e.Record
			}
		case EventDone:
			if d := st.Done[e.Record]; d != nil && !Retryable(d) {
				return nil, 0, &Error{File: path, Line: n, Msg: fmt.Sprintf("record %d done twice", e.Record)}
			}
			st.Done[e.Record] = &e
			delete(started, e.Record)
			if e.Serial != "" {
				st.Serials[e.Serial] = e.Record
			}
		case EventInterrupted:
			st.Interrupted[e.Record] = &e
			delete(started, e.Record)
		default:
			return nil, 0, &Error{File: path, Line: n, Msg: fmt.Sprintf("unknown event %q", e.Event)}
		}
		good += int64(len(line))
	}
	for n, e := range started {
		st.Interrupted[n] = e
	}
	return st, good, nil
}

// Write appends e as one line and fsyncs the file.
func (j *Journal) Write(e *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding a results line: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("writing the results file: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing the results file: %w", err)
	}
	return nil
}

// Path is the results file's name.
func (j *Journal) Path() string { return j.path }

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }
