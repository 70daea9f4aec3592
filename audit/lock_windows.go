//go:build windows

package audit

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockExclusive takes f's exclusive lock, waiting while another writer
// (a process, or another Log of this one) appends a record.
func lockExclusive(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, new(windows.Overlapped))
}

func unlock(f *os.File) {
	windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// syncDir: NTFS makes a rename durable with the file's metadata; a folder
// cannot be opened for flushing.
func syncDir(string) error { return nil }
