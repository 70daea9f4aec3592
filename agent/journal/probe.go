package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse: another process holds the journal open (a running agent: bbolt
// locks its file for the process that writes it).
var ErrInUse = errors.New("journal is held by another process (a running agent)")

// ErrNotCreated: the folder has no journal yet; the agent creates it when
// it starts.
var ErrNotCreated = errors.New("no journal yet (the agent creates it when it starts)")

// Probe opens dir's journal read-only and closes it again, for the station
// self-test (spec/station.md "Self-test"). It changes nothing: jobs left
// running are not marked interrupted, as Open would.
func Probe(dir string) error {
	path := filepath.Join(dir, "journal.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("probing journal %s: %w", dir, ErrNotCreated)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("probing journal %s: %w", dir, ErrInUse)
	}
	if err != nil {
		return fmt.Errorf("probing journal %s: %w", dir, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketJobs) == nil {
			return errors.New("no jobs bucket")
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("probing journal %s: %w", dir, err)
	}
	return nil
}
