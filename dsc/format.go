package dsc

import "bytes"

// Format prints f in canonical form: UTF-8 without a byte-order mark, LF
// line ends, "Key=Value" without blanks around '=', one blank line before
// each section header, comments kept where they were. Keys, values and
// section names are printed as written, in their order, so that
// Parse(Format(f)) has the same sections, entries and comments as f.
func Format(f *File) []byte {
	var b bytes.Buffer
	comments := func(cs []Comment) {
		for _, c := range cs {
			b.WriteString(c.Text)
			b.WriteByte('\n')
		}
	}
	comments(f.Comments)
	for i, s := range f.Sections {
		if i > 0 || len(f.Comments) > 0 {
			b.WriteByte('\n')
		}
		if i > 0 {
			comments(f.Sections[i-1].Trailing)
		}
		b.WriteByte('[')
		b.WriteString(s.Name)
		b.WriteString("]\n")
		for _, e := range s.Entries {
			comments(e.Comments)
			b.WriteString(e.Key)
			b.WriteByte('=')
			b.WriteString(e.Value)
			b.WriteByte('\n')
		}
	}
	if n := len(f.Sections); n > 0 {
		comments(f.Sections[n-1].Trailing)
	}
	comments(f.Trailing)
	return b.Bytes()
}
