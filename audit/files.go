package audit

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// logFile is one file of an audit folder.
type logFile struct {
	name  string
	first uint64 // from the name; audit.log sorts last
}

// rotated lists the closed files of dir (audit-<seq>.log), oldest first.
func rotated(dir string) ([]logFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing the audit folder: %w", err)
	}
	var files []logFile
	for _, e := range ents {
		n := e.Name()
		num, ok := strings.CutPrefix(n, "audit-")
		if !ok || e.IsDir() {
			continue
		}
		num, ok = strings.CutSuffix(num, ".log")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		files = append(files, logFile{name: n, first: seq})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].first < files[j].first })
	return files, nil
}

// logFiles lists every file of dir in chain order: the closed files, then
// audit.log when it exists.
func logFiles(dir string) ([]logFile, error) {
	files, err := rotated(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir + string(os.PathSeparator) + CurrentFile); err == nil && !st.IsDir() {
		files = append(files, logFile{name: CurrentFile})
	}
	return files, nil
}
