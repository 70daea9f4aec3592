package dsc

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// Platform, if set, is the target: a description whose PKCS#11 library
	// keys name only other platforms gets a warning.
	Platform Platform
	// Files, if not nil, is where referenced card profiles and APDU scripts
	// are looked for (a Bundle, or the directory of a bare .dsc). APDU
	// scripts found there are parsed and checked too.
	Files fs.FS
	// MissingFiles is the severity of a referenced file absent from Files:
	// SeverityError for a .dsz (it must be complete), SeverityWarning for a
	// bare .dsc (a server may send the files with each job).
	MissingFiles Severity
}

// Load parses and checks src: Parse then Check. Diagnostics hold the parse
// errors and the checker's errors and warnings, sorted. The description is
// nil only if nothing could be parsed at all.
func Load(name string, src []byte, opts CheckOptions) (*Description, Diagnostics) {
	f, err := Parse(name, src)
	var ds Diagnostics
	if err != nil {
		ds = append(ds, err.(Diagnostics)...)
	}
	d, cds := Check(f, opts)
	ds = append(ds, cds...)
	if len(ds) > 0 && d != nil {
		d.invalid = d.invalid || ds.HasErrors()
	}
	ds.Sort()
	return d, ds
}

// Check resolves every key of f against docs/dsc.md and builds the typed
// model. It reports errors (the description cannot run) and warnings, each
// with a position and a one-line reason, sorted. The Description is
// returned even with errors (for tools), but NewPlan refuses it.
func Check(f *File, opts CheckOptions) (*Description, Diagnostics) {
	c := checker{f: f, opts: opts, d: &Description{Name: f.Name, File: f}}
	c.run()
	c.d.invalid = c.diags.HasErrors()
	c.diags.Sort()
	return c.d, c.diags
}

type checker struct {
	f      *File
	opts   CheckOptions
	d      *Description
	diags  Diagnostics
	values []Value // backing store for the model's values
}

// newValue returns a Value from the checker's slab.
func (c *checker) newValue() *Value {
	if len(c.values) == cap(c.values) {
		c.values = make([]Value, 0, 16)
	}
	c.values = c.values[:len(c.values)+1]
	return &c.values[len(c.values)-1]
}

func (c *checker) errorf(pos Pos, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: pos, Severity: SeverityError, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(pos Pos, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: pos, Severity: SeverityWarning, Msg: fmt.Sprintf(format, args...)})
}

func classify(name string) (sectionKind, string) {
	switch {
	case equalFold(name, "Encoding"):
		return secEncoding, ""
	case equalFold(name, "Fields"):
		return secFields, ""
	case equalFold(name, "Description"):
		return secDescription, ""
	case len(name) > len("Application_") && equalFold(name[:len("Application_")], "Application_"):
		return secApplication, name[len("Application_"):]
	}
	return secUnknown, ""
}

func (c *checker) run() {
	d := c.d
	n := 0
	for _, s := range c.f.Sections {
		n += len(s.Entries)
	}
	c.values = make([]Value, 0, n)
	var seen [5]*Section
	var apps []*Section
	// [Fields] first, so that references resolve wherever the section is.
	for _, s := range c.f.Sections {
		kind, id := classify(s.Name)
		switch kind {
		case secUnknown:
			msg := "unknown section [" + s.Name + "]; ignored"
			if sug := suggest(s.Name, []string{"Encoding", "Fields", "Description"}); sug != "" {
				msg += " (did you mean [" + sug + "]?)"
			}
			c.warnf(s.Pos, "%s", msg)
			continue
		case secApplication:
			if prev := d.Application(id); prev != nil {
				c.errorf(s.Pos, "duplicate section [%s] (first at line %d)", s.Name, prev.Pos.Line)
				c.errorf(prev.Pos, "section [%s] is repeated at line %d", prev.Section, s.Pos.Line)
				continue
			}
			d.Applications = append(d.Applications, &Application{ID: id, Section: s.Name, Pos: s.Pos})
			apps = append(apps, s)
			continue
		}
		if prev := seen[kind]; prev != nil {
			c.errorf(s.Pos, "duplicate section [%s] (first at line %d)", s.Name, prev.Pos.Line)
			c.errorf(prev.Pos, "section [%s] is repeated at line %d", prev.Name, s.Pos.Line)
			continue
		}
		seen[kind] = s
	}
	if s := seen[secFields]; s != nil {
		c.fields(s)
	}
	if s := seen[secEncoding]; s != nil {
		c.entries(s, secEncoding, nil)
	}
	if s := seen[secDescription]; s != nil {
		c.entries(s, secDescription, nil)
	}
	for i, s := range apps {
		c.entries(s, secApplication, d.Applications[i])
	}
	c.encoding()
	c.description()
	for _, a := range d.Applications {
		c.application(a)
	}
	c.files()
}

func (c *checker) fields(s *Section) {
	d := c.d
	d.fields = make(map[string]*Field, len(s.Entries))
	slab := make([]Field, 0, len(s.Entries))
	d.Fields = make([]*Field, 0, len(s.Entries))
	for _, e := range s.Entries {
		low := strings.ToLower(e.Key)
		if prev := d.Field(e.Key); prev != nil {
			c.errorf(e.Pos, "duplicate field %s (first at line %d)", e.Key, prev.Pos.Line)
			c.errorf(prev.Pos, "field %s is declared again at line %d", prev.Name, e.Pos.Line)
			continue
		}
		if strings.ContainsAny(e.Key, " \t,!#") {
			c.errorf(e.Pos, "field name %q may not contain blanks, ',', '!' or '#'", e.Key)
		}
		slab = append(slab, Field{Name: e.Key, Default: e.Value, Pos: e.Pos})
		f := &slab[len(slab)-1]
		d.fields[low] = f
		d.Fields = append(d.Fields, f)
	}
}

// entries resolves the keys of one section.
func (c *checker) entries(s *Section, sec sectionKind, app *Application) {
	type slotEntry struct {
		slot **Value
		e    *Entry
	}
	first := make([]slotEntry, 0, len(s.Entries))
	var pinOut map[string]*Entry
	for _, e := range s.Entries {
		if sec == secDescription && len(e.Key) > len(pinOutputPrefix) && equalFold(e.Key[:len(pinOutputPrefix)], pinOutputPrefix) {
			if pinOut == nil {
				pinOut = map[string]*Entry{}
			}
			c.pinOutput(e, pinOut)
			continue
		}
		k := lookupKey(sec, e.Key)
		if k == nil {
			c.unknownKey(e, sec)
			continue
		}
		var slot **Value
		if k.app != nil {
			slot = k.app(app)
		} else {
			slot = k.desc(c.d)
		}
		var prev *Entry
		for _, se := range first {
			if se.slot == slot {
				prev = se.e
			}
		}
		if prev != nil {
			c.errorf(e.Pos, "duplicate key %s (first at line %d)", e.Key, prev.Pos.Line)
			c.errorf(prev.Pos, "key %s is set again at line %d", prev.Key, e.Pos.Line)
			continue
		}
		first = append(first, slotEntry{slot, e})
		v := c.value(e, k)
		*slot = v
		if k.kind == kCriteria && app != nil && v != nil && v.Text != "" {
			crit, err := ParseObjectCriteria(v.Text)
			if err != nil {
				c.errorf(v.ValPos, "malformed ObjectCriteria: %v", err)
			} else {
				app.Criteria = crit
			}
		}
	}
}

func (c *checker) unknownKey(e *Entry, sec sectionKind) {
	for _, other := range []sectionKind{secEncoding, secDescription, secApplication} {
		if other != sec && lookupKey(other, e.Key) != nil {
			c.warnf(e.Pos, "key %s belongs in [%s], not here; ignored", e.Key, sectionNames[other])
			return
		}
	}
	msg := "unknown key " + e.Key + " in [" + sectionNames[sec] + "]; ignored"
	if sug := suggest(e.Key, keyNames(sec)); sug != "" {
		msg += " (did you mean " + sug + "?)"
	}
	c.warnf(e.Pos, "%s", msg)
}

func (c *checker) pinOutput(e *Entry, seen map[string]*Entry) {
	name := strings.ToUpper(e.Key[len(pinOutputPrefix):])
	ok := false
	for _, n := range PINOutputNames {
		ok = ok || n == name
	}
	if !ok {
		c.errorf(e.Pos, "unknown encrypted PIN %q in %s (want one of %s)", e.Key[len(pinOutputPrefix):], e.Key, strings.Join(PINOutputNames, ", "))
		return
	}
	if prev := seen[name]; prev != nil {
		c.errorf(e.Pos, "duplicate key %s (first at line %d)", e.Key, prev.Pos.Line)
		c.errorf(prev.Pos, "key %s is set again at line %d", prev.Key, e.Pos.Line)
		return
	}
	seen[name] = e
	v := c.value(e, &keyInfo{name: e.Key, kind: kField})
	if v.Kind == ValueField {
		c.d.Settings.PINOutputs = append(c.d.Settings.PINOutputs, PINOutput{Name: name, Value: v})
	}
}

// elided is the documentation's elision of a value ("Operator_Pin=...").
const elided = "..."

// value reads one key's value according to its kind.
func (c *checker) value(e *Entry, k *keyInfo) *Value {
	v := c.newValue()
	*v = Value{Key: e.Key, Raw: e.Value, Pos: e.Pos, ValPos: e.ValuePos}
	raw := e.Value
	switch {
	case raw == "":
		v.Kind = ValueEmpty
		if k.kind == kRefused {
			c.refused(e, k)
		}
		return v
	case raw == elided:
		v.Kind = ValueEmpty
		c.warnf(e.ValuePos, "value of %s is elided (%q); a job without a value skips it", e.Key, elided)
		return v
	}
	switch k.kind {
	case kRefused:
		c.refused(e, k)
		v.Kind, v.Text = ValueWord, raw
	case kType, kDevices:
		v.Kind, v.Text = ValueWord, raw
	case kName, kCriteria:
		v.Kind, v.Text = ValueWord, raw
		if raw[0] == '#' {
			v.Kind, v.Text = ValueLiteral, raw[1:]
		}
	case kWord:
		switch {
		case raw[0] == '#':
			v.Kind, v.Text = ValueLiteral, raw[1:]
		case c.d.Field(raw) != nil:
			v.Kind, v.Text = ValueField, c.d.Field(raw).Name
		default:
			v.Kind, v.Text = ValueWord, raw
		}
	case kBool:
		switch {
		case raw[0] == '#':
			v.Kind, v.Text = ValueLiteral, raw[1:]
			if _, ok := parseBool(v.Text); !ok {
				c.errorf(e.ValuePos, "%s: %q is not a boolean (want #true or #false)", e.Key, raw)
			}
		case isBoolWord(raw):
			v.Kind, v.Text = ValueLiteral, raw
		default:
			c.fieldRef(v, "a boolean (true, false, #true, #false) or a field")
		}
	case kInt:
		t := raw
		if t[0] == '#' {
			t = t[1:]
		}
		if _, err := strconv.Atoi(t); err == nil {
			v.Kind, v.Text = ValueLiteral, t
		} else if raw[0] == '#' {
			v.Kind, v.Text = ValueLiteral, t
			c.errorf(e.ValuePos, "%s: %q is not a number", e.Key, raw)
		} else {
			c.fieldRef(v, "a number or a field")
		}
	case kValue:
		if raw[0] == '#' {
			v.Kind, v.Text = ValueLiteral, raw[1:]
		} else {
			c.fieldRef(v, "a #literal or a field")
		}
	case kPIN:
		switch raw[0] {
		case '#':
			v.Kind, v.Text = ValueLiteral, raw[1:]
		case '!':
			src, ok := parseSource(raw)
			if !ok {
				c.errorf(e.ValuePos, "%s: unknown PIN source %s (want !FROM_USER_DIALOG_n_FIELD, !FROM_USER_DIALOG_n_FIELD_AUTO with n 1 to 3, or !FROM_PROTECTED_AUTHENTICATION_PATH)", e.Key, raw)
			}
			v.Kind, v.Text, v.Source = ValueSource, raw[1:], src
		default:
			c.fieldRef(v, "a #literal, a field or a !FROM_… source")
		}
	case kField:
		if raw[0] == '#' {
			c.errorf(e.ValuePos, "%s takes a field name, not a literal (%s)", e.Key, raw)
			v.Kind, v.Text = ValueLiteral, raw[1:]
		} else {
			c.fieldRef(v, "a field")
		}
	case kFieldList:
		v.Kind, v.Text = ValueWord, raw
		for item, col := range listItems(raw, e.ValuePos.Col) {
			pos := Pos{File: e.Pos.File, Line: e.Pos.Line, Col: col}
			if item == "" {
				c.errorf(pos, "%s: empty item in list", e.Key)
				continue
			}
			f := c.d.Field(item)
			if f == nil {
				c.undeclared(pos, e.Key, item)
				continue
			}
			switch {
			case equalFold(k.name, "ProfileParameters"):
				c.d.Settings.ProfileParams = append(c.d.Settings.ProfileParams, f.Name)
			case equalFold(k.name, "ClearFields"):
				c.d.Settings.ClearFieldNames = append(c.d.Settings.ClearFieldNames, f.Name)
			}
		}
	}
	return v
}

func (c *checker) refused(e *Entry, k *keyInfo) {
	switch k.name {
	case "SignPUK":
		c.errorf(e.Pos, "SignPUK cannot be set: the card profile creates the signature PUK")
	case "MiniDriverLibrary":
		c.errorf(e.Pos, "MiniDriverLibrary is not supported: cardwright uses PKCS#11 (PKCS11Library…) or card profiles")
	}
}

// fieldRef resolves a bare name that must be a declared field.
func (c *checker) fieldRef(v *Value, want string) {
	if f := c.d.Field(v.Raw); f != nil {
		v.Kind, v.Text = ValueField, f.Name
		return
	}
	v.Kind, v.Text = ValueWord, v.Raw
	msg := fmt.Sprintf("%s: %s is not declared in [Fields] (want %s)", v.Key, v.Raw, want)
	if sug := c.fieldSuggestion(v.Raw); sug != "" {
		msg += "; did you mean " + sug + "?"
	}
	c.errorf(v.ValPos, "%s", msg)
}

func (c *checker) undeclared(pos Pos, key, name string) {
	msg := fmt.Sprintf("%s: %s is not declared in [Fields]", key, name)
	if equalFold(key, "ProfileParameters") {
		msg = fmt.Sprintf("profile parameter %s is not declared in [Fields]", name)
	}
	if sug := c.fieldSuggestion(name); sug != "" {
		msg += "; did you mean " + sug + "?"
	}
	c.errorf(pos, "%s", msg)
}

func (c *checker) fieldSuggestion(name string) string {
	names := make([]string, len(c.d.Fields))
	for i, f := range c.d.Fields {
		names[i] = f.Name
	}
	return suggest(name, names)
}

// listItems yields the trimmed items of a comma list with their columns.
func listItems(s string, col int) func(yield func(string, int) bool) {
	return func(yield func(string, int) bool) {
		off := 0
		for {
			i := strings.IndexByte(s[off:], ',')
			end := len(s)
			if i >= 0 {
				end = off + i
			}
			item := s[off:end]
			lead := len(item) - len(strings.TrimLeft(item, " \t"))
			if !yield(strings.TrimSpace(item), col+off+lead) {
				return
			}
			if i < 0 {
				return
			}
			off = end + 1
		}
	}
}

func isBoolWord(s string) bool { return equalFold(s, "true") || equalFold(s, "false") }

// parseBool reads a boolean literal or field value: true/false in any case,
// also 1/0 (docs/dsc.md).
func parseBool(s string) (bool, bool) {
	switch {
	case equalFold(s, "true") || s == "1":
		return true, true
	case equalFold(s, "false") || s == "0":
		return false, true
	}
	return false, false
}

// literalBool returns the value of a boolean key when it is a literal:
// (value, true); a field or an absent key gives (false, false).
func literalBool(v *Value) (bool, bool) {
	if v == nil || v.Kind != ValueLiteral {
		return false, false
	}
	return parseBool(v.Text)
}

// maybeTrue reports whether a boolean key may be true at run time: a true
// literal or a field.
func maybeTrue(v *Value) bool {
	if v == nil {
		return false
	}
	if v.Kind == ValueField {
		return true
	}
	b, _ := literalBool(v)
	return b
}

// present reports whether a key is present with a value.
func present(v *Value) bool { return v != nil && v.Kind != ValueEmpty }

// knownDevices are the device-class ids seen in the record.
var knownDevices = map[int]bool{8710: true, 8711: true}

func (c *checker) encoding() {
	enc := &c.d.Encoding
	if v := enc.Type; present(v) {
		id, name, _ := strings.Cut(v.Raw, ",")
		n, err := strconv.Atoi(strings.TrimSpace(id))
		if err != nil {
			c.errorf(v.ValPos, "Type %q: want <id>,<name>, e.g. 1024,Chip", v.Raw)
		} else {
			enc.TypeID, enc.TypeName = n, strings.TrimSpace(name)
			if n != 1024 {
				c.errorf(v.ValPos, "Type %s is not a chip encoding (want 1024,Chip): cardwright encodes smart cards only", v.Raw)
			}
		}
	}
	if v := enc.Devices; present(v) {
		for item, col := range listItems(v.Raw, v.ValPos.Col) {
			pos := Pos{File: v.Pos.File, Line: v.Pos.Line, Col: col}
			n, err := strconv.Atoi(item)
			if err != nil {
				c.errorf(pos, "Devices: %q is not a device-class id", item)
				continue
			}
			enc.DeviceIDs = append(enc.DeviceIDs, n)
			if !knownDevices[n] {
				c.warnf(pos, "Devices: unknown device class %d (known: 8710, 8711)", n)
			}
		}
	}
}

func (c *checker) description() {
	d := c.d
	s := &d.Settings
	if v := s.ProfileParameters; present(v) {
		for item, col := range listItems(v.Raw, v.ValPos.Col) {
			if isReserved(item) {
				c.errorf(Pos{File: v.Pos.File, Line: v.Pos.Line, Col: col}, "ProfileParameters: %s is reserved for PINs (set it with PIN, SignPIN, InitialPUK or Operator_Pin)", item)
			}
		}
		if !present(s.ChipProfile) {
			c.errorf(v.Pos, "ProfileParameters without ChipProfile: there is no profile to pass them to")
		}
	}
	if v := s.ChipProfile; present(v) {
		if !present(s.InitToken) {
			c.errorf(v.Pos, "ChipProfile without InitToken: the profile runs only when the card is initialized (add InitToken=true)")
		} else if b, ok := literalBool(s.InitToken); ok && !b {
			c.errorf(v.Pos, "ChipProfile with InitToken=%s: the profile never runs", s.InitToken.Raw)
		}
	}
	if len(s.PINOutputs) > 0 && len(d.Applications) > 0 {
		a := d.Applications[0]
		c.errorf(s.PINOutputs[0].Value.Pos, "%s may not be combined with applications ([%s] at line %d): decrypted PINs are read in the finalization step", s.PINOutputs[0].Value.Key, a.Section, a.Pos.Line)
	}
	for _, o := range s.PINOutputs {
		for _, v := range []*Value{s.PIN, s.PUK, s.InitialPUK, s.OperatorPIN, s.SignPIN} {
			if v.IsField() && equalFold(v.Text, o.Value.Text) {
				c.errorf(v.ValPos, "%s: field %s receives a decrypted PIN only in the finalization step (%s, line %d); it cannot be used to log in in the same job", v.Key, v.Text, o.Value.Key, o.Value.Pos.Line)
			}
		}
	}
	if present(s.ApplicationList) && present(s.ApplicationListField) {
		c.errorf(s.ApplicationListField.Pos, "ApplicationList and ApplicationListField are both set (line %d); use one", s.ApplicationList.Pos.Line)
	}
	if v := s.ApplicationList; present(v) {
		ids := SplitApplicationList(v.Text)
		seen := map[string]bool{}
		for _, id := range ids {
			if d.Application(id) == nil {
				c.errorf(v.ValPos, "ApplicationList: no section [Application_%s]", id)
			}
			if seen[id] {
				c.errorf(v.ValPos, "ApplicationList: %s is listed twice", id)
			}
			seen[id] = true
		}
	}
	if maybeTrue(s.RetrieveAllTokens) {
		if !present(s.AllTokensIccsnsField) {
			c.errorf(s.RetrieveAllTokens.Pos, "RetrieveAllTokens needs AllTokensIccsnsField (the field that receives the list)")
		}
		if b, _ := literalBool(s.RetrieveAllTokens); b && (maybeTrue(s.InitToken) || len(d.Applications) > 0 || maybeTrue(s.DeleteProfile)) {
			c.warnf(s.RetrieveAllTokens.Pos, "RetrieveAllTokens=true: the job only lists the cards; initialization and applications never run")
		}
	}
	if b, ok := literalBool(s.UseSelectCriteriaIccsn); ok && b && !present(s.SelectCriteriaIccsn) {
		c.errorf(s.UseSelectCriteriaIccsn.Pos, "UseSelectCriteriaIccsn=true needs SelectCriteriaIccsn")
	}
	if b, ok := literalBool(s.OperatorPinIsSOCredential); ok && b && s.OperatorPIN == nil {
		c.errorf(s.OperatorPinIsSOCredential.Pos, "OperatorPinIsSOCredential=true needs Operator_Pin")
	}
	if maybeTrue(s.SetPIN) && s.PIN == nil {
		c.errorf(s.SetPIN.Pos, "SetPIN needs PIN (the new PIN or its dialog source)")
	}
	if b, _ := literalBool(s.SetPIN); b && maybeTrue(s.InitToken) {
		c.warnf(s.SetPIN.Pos, "SetPIN with InitToken: initialization sets the PIN; a job that initializes skips SetPIN")
	}
	if present(s.PUK) && s.InitialPUK == nil {
		c.errorf(s.PUK.Pos, "PUK (the new PUK) needs InitialPUK (the current one)")
	}
	if present(s.ApduResponseCodesField) && !present(s.ApduFile) {
		c.warnf(s.ApduResponseCodesField.Pos, "%s without ApduFile: no status words to report", s.ApduResponseCodesField.Key)
	}
	if found := s.libraryKeysFound(); len(found) > 0 && !c.opts.Platform.IsZero() && s.Library(c.opts.Platform) == nil {
		p := c.opts.Platform
		c.warnf(c.firstLibraryPos(), "no PKCS#11 library key for %s (found %s); a job on %s will fail", p, strings.Join(found, ", "), p)
	}
}

func (c *checker) firstLibraryPos() Pos {
	s := &c.d.Settings
	pos := Pos{}
	for _, v := range []*Value{s.PKCS11Library, s.PKCS11LibraryWindows32, s.PKCS11LibraryWindows64, s.PKCS11LibraryLinux, s.PKCS11LibraryMac} {
		if v != nil && (!pos.IsValid() || v.Pos.less(pos)) {
			pos = v.Pos
		}
	}
	return pos
}

// SplitApplicationList splits an ApplicationList value into ids: with
// commas, each trimmed item is an id; without, each character is one (the
// record's "ABC").
func SplitApplicationList(s string) []string {
	var ids []string
	if strings.Contains(s, ",") {
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				ids = append(ids, item)
			}
		}
		return ids
	}
	for _, r := range strings.TrimSpace(s) {
		if r != ' ' && r != '\t' {
			ids = append(ids, string(r))
		}
	}
	return ids
}

func (c *checker) application(a *Application) {
	where := "[" + a.Section + "]"
	if present(a.ObjectCriteria) && present(a.KeySize) {
		c.errorf(a.KeySize.Pos, "%s: KeySize and ObjectCriteria (line %d) conflict: generate a key or select an existing one, not both", where, a.ObjectCriteria.Pos.Line)
	}
	if present(a.ObjectCriteria) && maybeTrue(a.KeyArchivalRequest) {
		c.errorf(a.KeyArchivalRequest.Pos, "%s: KeyArchivalRequest and ObjectCriteria (line %d) conflict: the server generates the key", where, a.ObjectCriteria.Pos.Line)
	}
	if present(a.KeySize) && maybeTrue(a.KeyArchivalRequest) {
		c.errorf(a.KeyArchivalRequest.Pos, "%s: KeyArchivalRequest and KeySize (line %d) conflict: the server generates the key", where, a.KeySize.Pos.Line)
	}
	if maybeTrue(a.WriteP12Data) && maybeTrue(a.WriteCertificate) {
		c.errorf(a.WriteCertificate.Pos, "%s: WriteCertificate and WriteP12Data (line %d) conflict: one Certificate field holds one of them", where, a.WriteP12Data.Pos.Line)
	}
	if maybeTrue(a.WriteP12Data) {
		if a.Certificate == nil {
			c.errorf(a.WriteP12Data.Pos, "%s: WriteP12Data needs Certificate (the field with the base64 PKCS#12)", where)
		}
		if a.P12Password == nil {
			c.errorf(a.WriteP12Data.Pos, "%s: WriteP12Data needs P12PASSWORD (the field with its password)", where)
		}
	}
	if maybeTrue(a.WriteCertificate) && a.Certificate == nil {
		c.errorf(a.WriteCertificate.Pos, "%s: WriteCertificate needs Certificate (the field with the base64 certificate)", where)
	}
	if maybeTrue(a.WriteCertKeyList) && a.CertKeyList == nil {
		c.errorf(a.WriteCertKeyList.Pos, "%s: WriteCertKeyList needs CertKeyList (the field with the list)", where)
	}
	if v := a.KeyType; v != nil && v.Kind != ValueField && v.Kind != ValueEmpty {
		if !equalFold(v.Text, "RSA") && !equalFold(v.Text, "EC") {
			c.errorf(v.ValPos, "%s: KeyType %q: want RSA or EC", where, v.Text)
		}
	}
	if v := a.KeySize; v != nil && v.Kind == ValueLiteral {
		if n, err := strconv.Atoi(v.Text); err == nil {
			if err := checkKeySize(keyTypeLiteral(a), n); err != nil {
				c.errorf(v.ValPos, "%s: %v", where, err)
			}
		}
	}
	if v := a.CertKeyListMode; v != nil && v.Kind != ValueField && v.Kind != ValueEmpty {
		if !equalFold(v.Text, "certificates") && !equalFold(v.Text, "p12") {
			c.errorf(v.ValPos, "%s: CertKeyListMode %q: want certificates or p12", where, v.Text)
		}
	}
	generates := present(a.KeySize) || present(a.KeyType) || present(a.ObjectCriteria) || maybeTrue(a.KeyArchivalRequest)
	if generates && !present(a.CertTempl) {
		c.warnf(a.Pos, "%s: no CertTempl: the server chooses the certificate template", where)
	}
	if !generates && a.WriteP12Data == nil && a.WriteCertificate == nil && a.WriteCertKeyList == nil && a.KeyArchivalRequest == nil {
		c.warnf(a.Pos, "%s does nothing (no KeySize, KeyType, ObjectCriteria, KeyArchivalRequest, WriteP12Data, WriteCertificate or WriteCertKeyList)", where)
	}
	if v := a.Location; v != nil && v.Kind != ValueField && equalFold(v.Text, "Signature") && c.d.Settings.SignPIN == nil {
		c.warnf(v.Pos, "%s: Location=Signature without SignPIN: the signature slot's PIN is asked for at run time", where)
	}
}

func keyTypeLiteral(a *Application) string {
	if a.KeyType != nil && a.KeyType.Kind != ValueField && equalFold(a.KeyType.Text, "EC") {
		return "EC"
	}
	return "RSA"
}

// checkKeySize validates a key size for a key type.
func checkKeySize(keyType string, n int) error {
	if keyType == "EC" {
		if n != 256 && n != 384 && n != 521 {
			return fmt.Errorf("KeySize %d: an EC key is 256, 384 or 521 bits", n)
		}
		return nil
	}
	if n < 1024 || n > 16384 || n%8 != 0 {
		return fmt.Errorf("KeySize %d: an RSA key is 1024 to 16384 bits, a multiple of 8", n)
	}
	return nil
}

// files looks for the referenced files in opts.Files.
func (c *checker) files() {
	if c.opts.Files == nil {
		return
	}
	s := &c.d.Settings
	for _, v := range []*Value{s.ChipProfile, s.ApduFile} {
		if !present(v) {
			continue
		}
		src, err := fs.ReadFile(c.opts.Files, v.Text)
		if err != nil {
			c.diags = append(c.diags, Diagnostic{Pos: v.ValPos, Severity: c.opts.MissingFiles, Msg: fmt.Sprintf("%s: file %s not found", v.Key, v.Text)})
			continue
		}
		if v == s.ApduFile {
			sc, err := ParseScript(v.Text, src)
			if err != nil {
				c.diags = append(c.diags, err.(Diagnostics)...)
			}
			for _, l := range sc.Lines {
				for _, seg := range l.Segments {
					for _, t := range seg {
						if t.Field != "" && c.d.Field(t.Field) == nil {
							c.errorf(l.Pos, "placeholder ${%s}: field %s is not declared in [Fields] of %s", t.Field, t.Field, c.f.Name)
						}
					}
				}
			}
		}
	}
}

// isReserved reports the profile variables that carry PINs.
func isReserved(name string) bool {
	for _, r := range []string{ProfileVariable.PIN1, ProfileVariable.PIN2, ProfileVariable.PUK, ProfileVariable.OP} {
		if equalFold(name, r) {
			return true
		}
	}
	return false
}
