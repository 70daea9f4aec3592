package cardinit

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// MaxRecent is how many recent descriptions are kept.
const MaxRecent = 10

// Recent is the list of recently opened descriptions, newest first, kept
// in a JSON file (RecentFile).
type Recent struct {
	File  string
	Paths []string
}

// RecentFile is where the list is kept: the user's configuration folder.
func RecentFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cardwright", "recent-descriptions.json"), nil
}

// LoadRecent reads the list; a missing or unreadable file is an empty list
// (it is a convenience, never a reason not to open the window).
func LoadRecent(file string) *Recent {
	r := &Recent{File: file}
	b, err := os.ReadFile(file)
	if err == nil {
		json.Unmarshal(b, &r.Paths)
	}
	if len(r.Paths) > MaxRecent {
		r.Paths = r.Paths[:MaxRecent]
	}
	return r
}

// Add puts path first and saves the list.
func (r *Recent) Add(path string) error {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	r.Paths = slices.DeleteFunc(r.Paths, func(p string) bool { return p == path })
	r.Paths = slices.Insert(r.Paths, 0, path)
	if len(r.Paths) > MaxRecent {
		r.Paths = r.Paths[:MaxRecent]
	}
	if r.File == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.File), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	b, _ := json.Marshal(r.Paths)
	return os.WriteFile(r.File, b, 0o600)
}
