package dsc

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Limits for .dsz containers. A container over any of them is refused
// before or while it is decompressed (zip bombs).
const (
	MaxDSZSize    = 16 << 20 // the container itself (after base64 decoding)
	MaxDSZFile    = 4 << 20  // one file, uncompressed
	MaxDSZTotal   = 16 << 20 // all files, uncompressed
	MaxDSZEntries = 256      // entries in the archive
)

// ErrDSZ is the kind of every error OpenDSZ returns (errors.Is).
var ErrDSZ = errors.New("invalid .dsz container")

func dszErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDSZ, fmt.Sprintf(format, args...))
}

// Bundle is an opened .dsz: the description and the files it ships (card
// profiles, APDU scripts). It implements fs.FS over those files, so it can
// be passed as CheckOptions.Files and Job.Files.
type Bundle struct {
	// Name is the path of the .dsc inside the container.
	Name string
	// Description is the .dsc text.
	Description []byte
	// Files are the other files by path relative to the .dsc's directory.
	Files map[string][]byte
}

// OpenDSZ reads a .dsz container: a zip, or the same zip base64-encoded (as
// card-management servers send it). It holds exactly one .dsc; every entry
// must have a plain relative path (no "..", no absolute or drive paths, no
// symlinks, no encryption), and the uncompressed sizes stay under
// MaxDSZFile and MaxDSZTotal whatever the headers claim.
func OpenDSZ(data []byte) (*Bundle, error) {
	if !bytes.HasPrefix(data, []byte("PK")) {
		dec, err := decodeBase64(data)
		if err != nil {
			return nil, dszErr("neither a zip nor base64: %v", err)
		}
		data = dec
	}
	if len(data) > MaxDSZSize {
		return nil, dszErr("container is %d bytes, more than %d", len(data), MaxDSZSize)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: reading zip: %w", ErrDSZ, err)
	}
	if len(zr.File) > MaxDSZEntries {
		return nil, dszErr("%d entries, more than %d", len(zr.File), MaxDSZEntries)
	}
	files := map[string][]byte{}
	var dscs []string
	var total int64
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, `\`, "/")
		if strings.HasSuffix(name, "/") && f.UncompressedSize64 == 0 {
			continue // directory
		}
		if err := checkEntryName(name); err != nil {
			return nil, dszErr("entry %q: %v", f.Name, err)
		}
		if f.Mode()&(fs.ModeSymlink|fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 || f.Mode().IsDir() {
			return nil, dszErr("entry %q is not a regular file", f.Name)
		}
		if f.Flags&0x1 != 0 {
			return nil, dszErr("entry %q is encrypted", f.Name)
		}
		if f.UncompressedSize64 > MaxDSZFile {
			return nil, dszErr("entry %q is %d bytes uncompressed, more than %d", f.Name, f.UncompressedSize64, MaxDSZFile)
		}
		if _, dup := files[name]; dup {
			return nil, dszErr("entry %q appears twice", f.Name)
		}
		b, err := readEntry(f, MaxDSZFile)
		if err != nil {
			return nil, err
		}
		total += int64(len(b))
		if total > MaxDSZTotal {
			return nil, dszErr("more than %d bytes uncompressed in all", MaxDSZTotal)
		}
		files[name] = b
		if strings.EqualFold(path.Ext(name), ".dsc") {
			dscs = append(dscs, name)
		}
	}
	switch len(dscs) {
	case 0:
		return nil, dszErr("no .dsc file in the container")
	case 1:
	default:
		sort.Strings(dscs)
		return nil, dszErr("several .dsc files in the container: %s", strings.Join(dscs, ", "))
	}
	b := &Bundle{Name: dscs[0], Description: files[dscs[0]], Files: map[string][]byte{}}
	dir := path.Dir(dscs[0])
	for name, data := range files {
		if name == dscs[0] {
			continue
		}
		if rel, ok := strings.CutPrefix(name, dir+"/"); ok && dir != "." {
			name = rel
		}
		b.Files[name] = data
	}
	return b, nil
}

func decodeBase64(data []byte) ([]byte, error) {
	clean := bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, data)
	if len(clean) > base64.StdEncoding.EncodedLen(MaxDSZSize) {
		return nil, fmt.Errorf("more than %d bytes", MaxDSZSize)
	}
	enc := base64.StdEncoding
	if bytes.ContainsAny(clean, "-_") {
		enc = base64.URLEncoding
	}
	if !bytes.HasSuffix(clean, []byte("=")) && len(clean)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.DecodeString(string(clean))
}

// checkEntryName refuses paths that could leave the container's tree.
func checkEntryName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute path")
	case len(name) >= 2 && name[1] == ':':
		return errors.New("drive path")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return errors.New("path leaves the container (..)")
		}
	}
	if !fs.ValidPath(name) {
		return errors.New("not a clean relative path")
	}
	return nil
}

// readEntry decompresses one entry, reading at most max+1 bytes so that a
// header that lies about the size cannot make it read more.
func readEntry(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrDSZ, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrDSZ, f.Name, err)
	}
	if int64(len(b)) > max {
		return nil, dszErr("entry %q is more than %d bytes uncompressed", f.Name, max)
	}
	return b, nil
}

// Load parses and checks the bundle's description with the bundle as the
// file set; a referenced file missing from the container is an error.
func (b *Bundle) Load(opts CheckOptions) (*Description, Diagnostics) {
	opts.Files, opts.MissingFiles = b, SeverityError
	return Load(path.Base(b.Name), b.Description, opts)
}

// lookup finds a file by exact name, else by a unique case-insensitive
// match (descriptions written on Windows).
func (b *Bundle) lookup(name string) (string, []byte, bool) {
	if data, ok := b.Files[name]; ok {
		return name, data, true
	}
	found := ""
	for n := range b.Files {
		if strings.EqualFold(n, name) {
			if found != "" {
				return "", nil, false
			}
			found = n
		}
	}
	if found == "" {
		return "", nil, false
	}
	return found, b.Files[found], true
}

// Open implements fs.FS over the shipped files.
func (b *Bundle) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	n, data, ok := b.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &bundleFile{name: path.Base(n), r: bytes.NewReader(data), size: int64(len(data))}, nil
}

// ReadFile implements fs.ReadFileFS.
func (b *Bundle) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	_, data, ok := b.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return bytes.Clone(data), nil
}

type bundleFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (f *bundleFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *bundleFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *bundleFile) Close() error               { return nil }
func (f *bundleFile) Name() string               { return f.name }
func (f *bundleFile) Size() int64                { return f.size }
func (f *bundleFile) Mode() fs.FileMode          { return 0o444 }
func (f *bundleFile) ModTime() time.Time         { return time.Time{} }
func (f *bundleFile) IsDir() bool                { return false }
func (f *bundleFile) Sys() any                   { return nil }
