// Package journal keeps the agent's jobs from the moment one is accepted
// until the portal acknowledges its result, and the origins the local user
// paired (docs/protocol.md, "Journal"). It is the agent's only state on
// disk.
package journal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cardwright/cardwright/agent/api"
)

// The journal keeps every job from the moment it is accepted until the
// portal acknowledges its result. It is a bbolt database (one file,
// copy-on-write B+tree, fsync on every commit): a commit either happened or
// not, so a kill -9 at any point leaves whole records. Concurrent commits
// are grouped with bolt's Batch, so N finishing jobs cost about one fsync.
// docs/protocol.md ("Journal") explains the choice over an append-only file.

// Job states in the journal.
const (
	StateRunning     = "running"
	StateDone        = "done"
	StateInterrupted = "interrupted"
)

var (
	bucketJobs   = []byte("jobs")
	bucketPaired = []byte("paired")
	bucketIndex  = []byte("index") // origin NUL session NUL reqID -> seq key
)

// ErrUnknownJob is returned for an ack of a job the journal does not hold
// (never submitted, already acknowledged, or another session's).
var ErrUnknownJob = errors.New("unknown job")

// ErrDuplicateJob is returned when a session reuses the request id of a job
// that is still journaled.
var ErrDuplicateJob = errors.New("duplicate job id")

// Record is one journaled job.
type Record struct {
	Seq      uint64      `json:"seq"`
	Origin   string      `json:"origin"`
	Session  string      `json:"session"`
	ReqID    string      `json:"req_id"`
	Reader   string      `json:"reader,omitempty"`
	State    string      `json:"state"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished,omitzero"`
	Result   *api.Result `json:"result,omitempty"` // wire form without Secrets
	// Secret outputs never reach the disk in clear: Sealed is their JSON
	// sealed with AES-256-GCM under a key that lives only in this
	// process's memory (AAD: the record's key). Another process (after a
	// crash or restart) cannot open them: the result is delivered with
	// Result.SecretsLost naming them, and the portal reads them again
	// from the card (decrypted PINs come from the card's PIN blob).
	Sealed      []byte   `json:"sealed,omitempty"`
	SecretNames []string `json:"secret_names,omitempty"`
}

// Journal is the on-disk job journal.
type Journal struct {
	db          *bolt.DB
	aead        cipher.AEAD // per-process key for secret outputs
	interrupted []Record    // the records Open marked interrupted
}

// Interrupted returns the records Open found running and marked
// interrupted (their Result is the interrupted result), oldest first:
// serve gives each an audit record.
func (j *Journal) Interrupted() []Record { return append([]Record(nil), j.interrupted...) }

func newProcessAEAD() (cipher.AEAD, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal moves res.Secrets into r.Sealed.
func (j *Journal) seal(r *Record, res *api.Result) error {
	cp := *res
	cp.Secrets = nil
	r.Result = &cp
	r.Sealed, r.SecretNames = nil, nil
	if len(res.Secrets) == 0 {
		return nil
	}
	for k := range res.Secrets {
		r.SecretNames = append(r.SecretNames, k)
	}
	sort.Strings(r.SecretNames)
	plain, err := json.Marshal(res.Secrets)
	if err != nil {
		return err
	}
	nonce := make([]byte, j.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	r.Sealed = j.aead.Seal(nonce, nonce, plain, seqKey(r.Seq))
	clear(plain)
	return nil
}

// open returns the record's result with its secrets, or with SecretsLost
// when they were sealed by another process.
func (j *Journal) open(r *Record) *api.Result {
	if r.Result == nil {
		return nil
	}
	res := *r.Result
	if len(r.Sealed) == 0 {
		return &res
	}
	ns := j.aead.NonceSize()
	if len(r.Sealed) > ns {
		plain, err := j.aead.Open(nil, r.Sealed[:ns], r.Sealed[ns:], seqKey(r.Seq))
		if err == nil {
			var m map[string]string
			err = json.Unmarshal(plain, &m)
			clear(plain)
			if err == nil {
				res.Secrets = m
				return &res
			}
		}
	}
	res.SecretsLost = r.SecretNames
	return &res
}

// Open opens (creating) dir/journal.db. Every job still marked
// running belongs to an agent that died: it is marked interrupted with an
// api.CodeInterrupted result, and their count is returned.
func Open(dir string) (*Journal, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("creating journal directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "journal.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, 0, fmt.Errorf("opening journal %s: %w", dir, err)
	}
	// Batch groups concurrent commits into one fsync; the default 10 ms
	// wait would be added to every single job's latency.
	db.MaxBatchDelay = time.Millisecond
	aead, err := newProcessAEAD()
	if err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("making the journal's secret key: %w", err)
	}
	j := &Journal{db: db, aead: aead}
	n := 0
	// Write (one fsync) only when there is something to set up or
	// recover: start-up time counts (spec: under 150 ms to accepting).
	clean := false
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		if b == nil || tx.Bucket(bucketPaired) == nil || tx.Bucket(bucketIndex) == nil {
			return nil
		}
		clean = true
		return b.ForEach(func(_, v []byte) error {
			var r Record
			if json.Unmarshal(v, &r) != nil || r.State == StateRunning {
				clean = false
			}
			return nil
		})
	})
	if clean {
		return j, 0, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketJobs)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketPaired); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketIndex); err != nil {
			return err
		}
		now := time.Now().UTC()
		type upd struct {
			k []byte
			v []byte
		}
		var ups []upd
		err = b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding journal record %x: %w", k, err)
			}
			if r.State != StateRunning {
				return nil
			}
			r.State = StateInterrupted
			r.Finished = now
			r.Result = &api.Result{
				Type: api.TypeResult, ID: r.ReqID,
				Error:   &api.JobError{Code: api.CodeInterrupted, Message: "the agent stopped while the job was running; check the card before retrying"},
				Started: r.Started.Format(time.RFC3339Nano), Finished: now.Format(time.RFC3339Nano),
			}
			nv, err := json.Marshal(&r)
			if err != nil {
				return err
			}
			ups = append(ups, upd{append([]byte(nil), k...), nv})
			j.interrupted = append(j.interrupted, r)
			return nil
		})
		if err != nil {
			return err
		}
		for _, u := range ups {
			if err := b.Put(u.k, u.v); err != nil {
				return err
			}
		}
		n = len(ups)
		return nil
	})
	if err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("recovering journal: %w", err)
	}
	sort.Slice(j.interrupted, func(a, b int) bool { return j.interrupted[a].Seq < j.interrupted[b].Seq })
	return j, n, nil
}

// Close closes the database.
func (j *Journal) Close() error { return j.db.Close() }

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// Begin journals a new running job and returns its sequence number.
func (j *Journal) Begin(origin, session, reqID, reader string) (uint64, error) {
	var seq uint64
	err := j.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		ik := indexKey(origin, session, reqID)
		if tx.Bucket(bucketIndex).Get(ik) != nil {
			return ErrDuplicateJob
		}
		s, err := b.NextSequence()
		if err != nil {
			return err
		}
		r := Record{Seq: s, Origin: origin, Session: session, ReqID: reqID, Reader: reader, State: StateRunning, Started: time.Now().UTC()}
		v, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		seq = s
		if err := tx.Bucket(bucketIndex).Put(ik, seqKey(s)); err != nil {
			return err
		}
		return b.Put(seqKey(s), v)
	})
	if err != nil {
		return 0, fmt.Errorf("journaling job: %w", err)
	}
	return seq, nil
}

// Finish stores the job's result durably (fsync) and marks it done. Only
// after Finish returns may the result be sent.
func (j *Journal) Finish(seq uint64, res *api.Result) error {
	err := j.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		v := b.Get(seqKey(seq))
		if v == nil {
			return ErrUnknownJob
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		r.State = StateDone
		r.Finished = time.Now().UTC()
		if err := j.seal(&r, res); err != nil {
			return err
		}
		nv, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), nv)
	})
	if err != nil {
		return fmt.Errorf("journaling result: %w", err)
	}
	return nil
}

// Pending returns the finished (done or interrupted) records of a session
// in the order the jobs were submitted, with their secret outputs opened
// where this process sealed them.
func (j *Journal) Pending(origin, session string) ([]Record, error) {
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.Origin == origin && r.Session == session && r.State != StateRunning {
				r.Result = j.open(&r)
				out = append(out, r)
			}
			return nil
		})
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out, err
}

// HasSession reports whether the journal holds any job of the session
// (running, finished or interrupted, not yet acknowledged).
func (j *Journal) HasSession(origin, session string) (bool, error) {
	prefix := []byte(origin + "\x00" + session + "\x00")
	found := false
	err := j.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketIndex).Cursor().Seek(prefix)
		found = k != nil && bytes.HasPrefix(k, prefix)
		return nil
	})
	return found, err
}

// All returns every record as stored (secrets sealed), for diagnostics and
// tests.
func (j *Journal) All() ([]Record, error) {
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Ack forgets the finished job reqID of the session. Acknowledging a job
// that is still running, or that the session does not own, is
// ErrUnknownJob.
func (j *Journal) Ack(origin, session, reqID string) error {
	return j.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		ik := indexKey(origin, session, reqID)
		k := tx.Bucket(bucketIndex).Get(ik)
		if k == nil {
			return ErrUnknownJob
		}
		v := b.Get(k)
		var r Record
		if v == nil || json.Unmarshal(v, &r) != nil || r.State == StateRunning {
			return ErrUnknownJob
		}
		if err := tx.Bucket(bucketIndex).Delete(ik); err != nil {
			return err
		}
		return b.Delete(k)
	})
}

// Purge deletes finished records older than maxAge that were never
// acknowledged, and returns how many went.
func (j *Journal) Purge(maxAge time.Duration) (int, error) {
	cut := time.Now().Add(-maxAge)
	n := 0
	old := false
	j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(_, v []byte) error {
			var r Record
			if json.Unmarshal(v, &r) == nil && r.State != StateRunning && r.Finished.Before(cut) {
				old = true
			}
			return nil
		})
	})
	if !old {
		return 0, nil
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		var dead []Record
		err := b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.State != StateRunning && r.Finished.Before(cut) {
				dead = append(dead, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range dead {
			if err := tx.Bucket(bucketIndex).Delete(indexKey(d.Origin, d.Session, d.ReqID)); err != nil {
				return err
			}
			if err := b.Delete(seqKey(d.Seq)); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	return n, err
}

func indexKey(origin, session, reqID string) []byte {
	return []byte(origin + "\x00" + session + "\x00" + reqID)
}

// AddPaired records an origin the local user approved, with the time of
// approval (RFC 3339, the value the paired bucket has always held).
func (j *Journal) AddPaired(origin string) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaired).Put([]byte(origin), []byte(time.Now().UTC().Format(time.RFC3339)))
	})
}

// RemovePaired forgets a paired origin. Removing an origin that is not
// paired is not an error.
func (j *Journal) RemovePaired(origin string) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaired).Delete([]byte(origin))
	})
	if err != nil {
		return fmt.Errorf("removing paired origin: %w", err)
	}
	return nil
}

// Paired lists approved origins.
func (j *Journal) Paired() ([]string, error) {
	ps, err := j.PairedOrigins()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Origin
	}
	return out, err
}

// PairedOrigin is an origin the local user approved.
type PairedOrigin struct {
	Origin string
	At     time.Time // when it was approved; zero if the record has no readable time
}

// PairedOrigins lists approved origins with the time of approval, in
// origin order.
func (j *Journal) PairedOrigins() ([]PairedOrigin, error) {
	var out []PairedOrigin
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaired).ForEach(func(k, v []byte) error {
			at, _ := time.Parse(time.RFC3339, string(v)) // zero when unreadable
			out = append(out, PairedOrigin{Origin: string(k), At: at})
			return nil
		})
	})
	return out, err
}
