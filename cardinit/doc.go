// Package cardinit is the standalone card initialization of the desktop app
// (spec/gui.md, "Standalone card initialization"; docs/gui.md) without its
// window: a description opened from a file with the card profiles it
// names, its diagnostics, the form its fields make, the job the form's
// values make (validated by the runner, as a portal's job is), and the
// certificate requests such a job answers from files. gui draws it;
// cmd/cardwright wires it to the real readers and tokens.
package cardinit

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cardwright/cardwright/check"
	"github.com/cardwright/cardwright/dsc"
)

// Doc is an opened description.
type Doc struct {
	Path   string           // as opened
	Name   string           // the description's file name (in a .dsz, its name inside)
	Source []byte           // the description text
	Files  fs.FS            // the referenced .cpf/.apdu files
	DSZ    []byte           // the container, when a .dsz was opened
	Desc   *dsc.Description // nil when the description does not parse
	Diags  dsc.Diagnostics  // description and card profiles, sorted
	Form   []Field          // the input fields, in declaration order
	// Outputs are the fields the job writes back (ICCSN, encrypted PINs,
	// …), by declared name.
	Outputs []string
}

// Open reads and checks a .dsc (its files from its folder) or a .dsz. Only
// reading the file fails here; what is wrong with the description is in
// Diags, with positions.
func Open(path string, opts check.Options) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opening the description: %w", err)
	}
	d := &Doc{Path: path, Name: filepath.Base(path)}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".dsc":
		dir := filepath.Dir(path)
		d.Source, d.Files = data, os.DirFS(dir)
		if opts.Display == nil {
			opts.Display = func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
		}
		if opts.MissingFiles == 0 {
			opts.MissingFiles = dsc.SeverityError
		}
	case ".dsz":
		// The one .dsz opener (dsc.OpenDSZ): size and path limits.
		b, err := dsc.OpenDSZ(data)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", d.Name, err)
		}
		d.DSZ, d.Source, d.Files, d.Name = data, b.Description, b, filepath.Base(b.Name)
		if opts.MissingFiles == 0 {
			opts.MissingFiles = dsc.SeverityError
		}
	default:
		return nil, fmt.Errorf("opening %s: not a .dsc or .dsz file", d.Name)
	}
	d.Desc, d.Diags = check.Description(d.Name, d.Source, d.Files, opts)
	if d.Desc != nil {
		d.Form, d.Outputs = form(d.Desc)
	}
	return d, nil
}

// Runnable reports whether the description checks without errors (a
// broken description cannot run, spec/gui.md).
func (d *Doc) Runnable() bool { return d.Desc != nil && !d.Diags.HasErrors() }

// Line returns line n of the description or of one of its files (as a
// diagnostic names it), without its line ending.
func (d *Doc) Line(pos dsc.Pos) (string, bool) {
	src := d.Source
	if pos.File != "" && pos.File != d.Name {
		b, err := d.file(pos.File)
		if err != nil {
			return "", false
		}
		src = b
	}
	if pos.Line < 1 {
		return "", false
	}
	lines := bytes.Split(src, []byte("\n"))
	if pos.Line > len(lines) {
		return "", false
	}
	return strings.TrimRight(string(lines[pos.Line-1]), "\r"), true
}

// file reads a referenced file named as a diagnostic names it: the name
// in the container, or its path on disk beside a .dsc.
func (d *Doc) file(name string) ([]byte, error) {
	if d.DSZ == nil {
		dir := filepath.Dir(d.Path)
		if rel, err := filepath.Rel(dir, name); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		}
	}
	return fs.ReadFile(d.Files, name)
}
