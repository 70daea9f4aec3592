// Package lockedfile holds what a file that must survive a crash and must
// have one writer needs of the system: an exclusive lock across processes
// (flock on Unix, LockFileEx on Windows) and a durable directory entry.
// batch's results file and the audit log use it.
package lockedfile

import (
	"errors"
	"os"
)

// ErrLocked means another open file (in this process or another) holds the
// lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes f's exclusive lock without waiting: ErrLocked when another
// open of the file has it. Closing f releases it.
func Lock(f *os.File) error { return lockExclusive(f) }

// Wait takes f's exclusive lock, waiting while another open of the file
// holds it (the audit log's writers take turns per record); Unlock
// releases it.
func Wait(f *os.File) error { return lockWait(f) }

// Unlock releases a lock taken by Wait (or Lock) without closing f.
func Unlock(f *os.File) { unlock(f) }

// SyncDir makes a new file or a rename in dir durable. Where a directory
// cannot be synced (Windows, whose NTFS makes the entry durable with the
// file's metadata) it does nothing.
func SyncDir(dir string) error { return syncDir(dir) }
