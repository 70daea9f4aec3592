package audit

// log.go: the writer (spec/station.md "Audit"). One JSON line a record,
// written with one write(2) and fsynced before Append returns. Several
// processes may write one folder (serve, encode, init-gui, batch): each
// Append holds an OS lock on audit.lock, follows what the others appended
// or rotated since, and writes the next record of the one chain. A kill -9
// mid-write leaves at most an unfinished last line, which the next Open or
// Append cuts away. audit.log is the current file; a full one is renamed
// audit-<first seq>.log and the chain goes on in a new audit.log.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cardwright/cardwright/internal/lockedfile"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// File names in an audit folder.
const (
	CurrentFile = "audit.log"
	lockFile    = "audit.lock"
)

// rotatedName is the name of a closed file whose first record is seq; the
// number is padded so that ls lists the files in order.
func rotatedName(first uint64) string { return fmt.Sprintf("audit-%020d.log", first) }

// ErrClosed is Err's answer after Close.
var ErrClosed = errors.New("the audit log is closed")

// Log is an open audit folder. Append is safe for concurrent use, and
// other processes may append to the same folder.
type Log struct {
	dir    string
	rotate int64
	rename func(from, to string) error // os.Rename; tests make it fail

	mu     sync.Mutex
	lock   *os.File // audit.lock, held during Open and each Append (lock_unix.go, lock_windows.go)
	f      *os.File // audit.log, O_APPEND; nil until the next Append reopens it
	size   int64
	first  uint64 // seq of audit.log's first record; 0 while it is empty
	seq    uint64 // the last record's
	hash   string // the last record's
	broken error  // a write whose outcome is unknown: no further appends
	buf    bytes.Buffer

	// Torn is the number of bytes of an unfinished last line (a record cut
	// by a kill or a power loss before Append returned) that Open removed;
	// the caller logs it. No record whose Append returned is ever torn.
	Torn int64
}

// Open opens (creating it) the audit folder dir for appending. A file
// passing rotateBytes is closed at the next Append and the chain goes on in
// a new one; rotateBytes <= 0 never rotates. It waits while another
// process appends a record.
func Open(dir string, rotateBytes int64) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the audit folder: %w", err)
	}
	lk, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit lock: %w", err)
	}
	if err := lockedfile.Wait(lk); err != nil {
		lk.Close()
		return nil, fmt.Errorf("locking the audit log %s: %w", dir, err)
	}
	l := &Log{dir: dir, rotate: rotateBytes, rename: os.Rename, lock: lk}
	err = l.open()
	lockedfile.Unlock(lk)
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// open opens audit.log, cuts a torn tail and finds where the chain stands.
// The caller holds the lock.
func (l *Log) open() error {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.size, l.first = 0, 0
	path := filepath.Join(l.dir, CurrentFile)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if errors.Is(statErr, os.ErrNotExist) {
		if err := lockedfile.SyncDir(l.dir); err != nil {
			return fmt.Errorf("creating the audit log: %w", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	if keep := int64(bytes.LastIndexByte(data, '\n') + 1); keep < int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			return fmt.Errorf("cutting the audit log's unfinished last line: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cutting the audit log's unfinished last line: %w", err)
		}
		l.Torn += int64(len(data)) - keep
		data = data[:keep]
	}
	ok = true
	l.f = f
	l.size = int64(len(data))
	if len(data) > 0 {
		first, err := firstSeq(data)
		if err != nil {
			return fmt.Errorf("reading the first record of %s: %w", path, err)
		}
		l.first = first
		return l.resume(path, data)
	}
	// An empty audit.log: the chain goes on from the newest closed file.
	files, err := rotated(l.dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	last := filepath.Join(l.dir, files[len(files)-1].name)
	data, err = os.ReadFile(last)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	return l.resume(last, data)
}

// resume takes the seq and hash of the last line of data (a file of path).
func (l *Log) resume(path string, data []byte) error {
	data = bytes.TrimSuffix(data, []byte{'\n'})
	line := data[bytes.LastIndexByte(data, '\n')+1:]
	var r Record
	if err := json.Unmarshal(line, &r); err != nil || r.Seq == 0 || r.Hash == "" {
		if err == nil {
			err = errors.New("no seq or hash")
		}
		return fmt.Errorf("reading the last record of %s (see cardwright audit verify): %w", path, err)
	}
	l.seq, l.hash = r.Seq, r.Hash
	return nil
}

// firstSeq is the seq of data's first line.
func firstSeq(data []byte) (uint64, error) {
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	var r struct{ Seq uint64 }
	if err := json.Unmarshal(line, &r); err != nil {
		return 0, err
	}
	if r.Seq == 0 {
		return 0, errors.New("no seq")
	}
	return r.Seq, nil
}

// Dir is the folder.
func (l *Log) Dir() string { return l.dir }

// Last returns the seq and hash of the last record (0 and "" when there is
// none).
func (l *Log) Last() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.hash
}

// Err is nil while the log takes records. After a failed write or sync of
// a record it says why: what reached the disk is unknown, and the chain
// must not fork, so the log takes no more records until it is opened again
// (a restart). Callers refuse new jobs then (spec/station.md "Audit": a
// station runs no job it cannot record). A failed rotation or reopening
// does not break the log: Append tries again.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.broken != nil:
		return fmt.Errorf("the audit log is unusable after a failed write: %w", l.broken)
	case l.lock == nil:
		return ErrClosed
	}
	return nil
}

// Append sets rec's Seq, Prev and Hash, writes it and returns once it is
// on disk (fsync). It holds audit.lock meanwhile and first takes up what
// other processes appended. After a failed write or sync the log takes no
// more records (Err). An error before the write (the lock, reopening
// audit.log) leaves the log usable; rec was not recorded.
func (l *Log) Append(rec *Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return fmt.Errorf("appending to the audit log: unusable after an earlier failure: %w", l.broken)
	}
	if l.lock == nil {
		return fmt.Errorf("appending to the audit log: %w", ErrClosed)
	}
	if err := lockedfile.Wait(l.lock); err != nil {
		return fmt.Errorf("locking the audit log: %w", err)
	}
	defer lockedfile.Unlock(l.lock)
	if err := l.catchUp(); err != nil {
		return err
	}
	if l.rotate > 0 && l.size >= l.rotate {
		if err := l.rotateFile(); err != nil {
			return err
		}
	}
	r := *rec
	line, err := seal(&l.buf, &r, l.seq+1, l.hash)
	if err != nil {
		return fmt.Errorf("encoding the audit record: %w", err)
	}
	if _, err := l.f.Write(line); err != nil {
		l.fail(err)
		return fmt.Errorf("writing the audit record: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.fail(err)
		return fmt.Errorf("syncing the audit record: %w", err)
	}
	l.size += int64(len(line))
	if l.first == 0 {
		l.first = r.Seq
	}
	l.seq, l.hash = r.Seq, r.Hash
	*rec = r
	return nil
}

// fail cuts a half-written record away (best effort) and stops the log.
func (l *Log) fail(err error) {
	l.broken = err
	l.f.Truncate(l.size)
}

// catchUp makes l.f the current audit.log and l's state its end: when
// another process appended or rotated since this one's last record (or an
// earlier rotation or reopening failed), audit.log is read again. The
// caller holds the lock.
func (l *Log) catchUp() error {
	if l.f != nil {
		st, err := os.Stat(filepath.Join(l.dir, CurrentFile))
		fst, ferr := l.f.Stat()
		if err == nil && ferr == nil && os.SameFile(st, fst) && st.Size() == l.size {
			return nil
		}
	}
	return l.open()
}

// rotateFile closes audit.log as audit-<first>.log and starts a new one.
// When the rename fails (on Windows whenever another process has audit.log
// open: Go opens files without FILE_SHARE_DELETE) the chain is intact in
// audit.log, which is opened again: the record goes there, and the next
// Append tries the rotation again. An error means audit.log could not be
// opened at all; the next Append tries that again too.
func (l *Log) rotateFile() error {
	l.f.Close()
	l.f = nil
	cur := filepath.Join(l.dir, CurrentFile)
	if err := l.rename(cur, filepath.Join(l.dir, rotatedName(l.first))); err != nil {
		if oerr := l.open(); oerr != nil {
			return fmt.Errorf("rotating the audit log: %v; reopening it: %w", err, oerr)
		}
		return nil
	}
	if err := l.open(); err != nil { // a new, empty audit.log after the closed file
		return fmt.Errorf("rotating the audit log: %w", err)
	}
	return nil
}

// Close closes the log and releases the folder.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	if l.lock != nil {
		lockedfile.Unlock(l.lock)
		l.lock.Close()
		l.lock = nil
	}
	return err
}

// encode sets r.Hash and returns r's line (in buf): the hash is the hex
// SHA-256 of the record's JSON without it; the line is that JSON with the
// hash as its last member, which is how encoding/json writes it (Hash is
// the last field). Verify accepts only lines exactly so encoded.
func encode(buf *bytes.Buffer, r *Record) ([]byte, error) {
	r.Hash = ""
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(r); err != nil {
		return nil, err
	}
	body := buf.Bytes()
	body = body[:len(body)-1] // the Encoder's newline
	sum := sha256.Sum256(body)
	r.Hash = hex.EncodeToString(sum[:])
	buf.Truncate(len(body) - 1) // before the closing brace
	buf.WriteString(`,"hash":"`)
	buf.WriteString(r.Hash)
	buf.WriteString("\"}\n")
	return buf.Bytes(), nil
}

// seal makes r the record after prev (seq, hash) and returns its line.
func seal(buf *bytes.Buffer, r *Record, seq uint64, prev string) ([]byte, error) {
	r.Seq, r.Prev = seq, prev
	sanitize(r)
	return encode(buf, r)
}

// sanitize makes every string valid UTF-8, so that the line decodes to the
// record it was made from (encoding/json would write \ufffd for an invalid
// byte, and the record read back would encode differently).
func sanitize(r *Record) {
	for _, s := range []*string{&r.Via, &r.Origin, &r.Job, &r.Description, &r.Reader, &r.ICCSN, &r.ATR, &r.Result} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	if len(r.Steps) > 0 {
		steps := make([]Step, len(r.Steps))
		copy(steps, r.Steps)
		for i := range steps {
			steps[i].Name = strings.ToValidUTF8(steps[i].Name, "\uFFFD")
			steps[i].Kind = strings.ToValidUTF8(steps[i].Kind, "\uFFFD")
		}
		r.Steps = steps
	}
}
