package audit

// export.go: `cardwright audit export` (spec/station.md "Audit": "writes it
// out for the server"). The lines go out exactly as written, so whoever
// receives them checks the same hashes (VerifyStream).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Export writes the records of dir from seq since on (0 or 1: all) to w,
// one JSON line each, byte for byte as the log holds them: from the first
// line whose seq is since or more, every complete line after it, damaged
// ones included (the receiver's check finds them). A torn last line is
// left out. It returns the number of lines written.
func Export(dir string, w io.Writer, since uint64) (int, error) {
	files, err := logFiles(dir)
	if err != nil {
		return 0, err
	}
	n, copying := 0, since <= 1
	for i := len(files) - 1; i > 0 && !copying; i-- {
		// Closed files that end before since are skipped unread.
		if files[i].first != 0 && files[i].first <= since {
			files = files[i:]
			break
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return n, fmt.Errorf("reading the audit log: %w", err)
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break // torn
			}
			line := data[:i+1]
			data = data[i+1:]
			if !copying {
				var r struct{ Seq uint64 }
				if json.Unmarshal(line, &r) != nil || r.Seq < since {
					continue
				}
				copying = true
			}
			if _, err := w.Write(line); err != nil {
				return n, fmt.Errorf("exporting the audit log: %w", err)
			}
			n++
		}
	}
	return n, nil
}
