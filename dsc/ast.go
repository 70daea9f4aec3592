package dsc

// File is a parsed description: sections and keys in the order written, with
// positions and comments, duplicates kept (the checker reports them).
type File struct {
	Name string `json:"name"`
	// Comments are the comment lines before the first section.
	Comments []Comment `json:"comments,omitempty"`
	// Sections in the order written.
	Sections []*Section `json:"sections"`
	// Trailing are comment lines after the last key of the file.
	Trailing []Comment `json:"trailing,omitempty"`
}

// Section is one "[Name]" block.
type Section struct {
	Name string `json:"name"` // as written, without brackets
	Pos  Pos    `json:"pos"`  // of the '['
	// Entries are the Key=Value lines of the section in order.
	Entries []*Entry `json:"entries"`
	// Trailing are comment lines after the last entry of the section that
	// are followed by another section header (they print before it).
	Trailing []Comment `json:"trailing,omitempty"`
}

// Entry is one "Key=Value" line.
type Entry struct {
	Key      string    `json:"key"`   // as written, blanks trimmed
	Value    string    `json:"value"` // as written after '=', blanks trimmed
	Pos      Pos       `json:"pos"`   // of the key
	ValuePos Pos       `json:"value_pos"`
	Comments []Comment `json:"comments,omitempty"` // comment lines just before the entry
}

// Comment is a whole-line comment, with its marker ('#' or ';').
type Comment struct {
	Text string `json:"text"` // the line, leading blanks trimmed
	Pos  Pos    `json:"pos"`
}

// Section returns the first section named name (case-insensitive), or nil.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if equalFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// Lookup returns the first entry whose key is key (case-insensitive), or nil.
func (s *Section) Lookup(key string) *Entry {
	for _, e := range s.Entries {
		if equalFold(e.Key, key) {
			return e
		}
	}
	return nil
}

// equalFold compares ASCII case-insensitively (keys and section names are
// ASCII; strings.EqualFold would also fold Unicode).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// appendLower appends the ASCII lower case of s to b.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, lower(s[i]))
	}
	return b
}
