package dsc

import "strconv"

// ValueKind says how a value was written.
type ValueKind uint8

const (
	// ValueEmpty: nothing after '='.
	ValueEmpty ValueKind = iota
	// ValueLiteral: "#text" (Text is the text without '#'), or a bare
	// true/false for a boolean key, or a bare integer for a numeric key.
	ValueLiteral
	// ValueField: a bare name declared in [Fields]; Text is the field name
	// as declared.
	ValueField
	// ValueSource: a "!FROM_…" PIN source collected locally; Source says
	// which.
	ValueSource
	// ValueWord: a bare word taken verbatim: names (ChipProfile, library
	// paths, CertTempl when not a field, Location=Signature, ApplicationList).
	ValueWord
)

var valueKindNames = [...]string{"empty", "literal", "field", "source", "word"}

func (k ValueKind) String() string {
	if int(k) < len(valueKindNames) {
		return valueKindNames[k]
	}
	return "ValueKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText writes the kind's name.
func (k ValueKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// PINSource is a "!FROM_…" value: a PIN the agent collects locally (dialog
// or PIN pad) and never receives over the network.
type PINSource struct {
	// Dialog is the dialog number: 1 enter one PIN, 2 new PIN twice, 3 old
	// PIN and new PIN twice. 0 for the PIN pad.
	Dialog int `json:"dialog,omitempty"`
	// PinPad: !FROM_PROTECTED_AUTHENTICATION_PATH (the reader's PIN pad).
	PinPad bool `json:"pin_pad,omitempty"`
	// Auto: !FROM_USER_DIALOG_n_FIELD_AUTO — the PIN pad if the reader has
	// one, else dialog n.
	Auto bool `json:"auto,omitempty"`
}

// String returns the source's name without '!', e.g.
// "FROM_USER_DIALOG_2_FIELD"; this is the kind passed to a Prompter.
func (s PINSource) String() string {
	if s.PinPad {
		return "FROM_PROTECTED_AUTHENTICATION_PATH"
	}
	n := "FROM_USER_DIALOG_" + strconv.Itoa(s.Dialog) + "_FIELD"
	if s.Auto {
		n += "_AUTO"
	}
	return n
}

// parseSource parses a value starting with '!'.
func parseSource(v string) (PINSource, bool) {
	switch {
	case equalFold(v, "!FROM_PROTECTED_AUTHENTICATION_PATH"):
		return PINSource{PinPad: true}, true
	case len(v) >= len("!FROM_USER_DIALOG_1_FIELD") && equalFold(v[:len("!FROM_USER_DIALOG_")], "!FROM_USER_DIALOG_"):
		rest := v[len("!FROM_USER_DIALOG_"):]
		d := rest[0]
		if d < '1' || d > '3' {
			return PINSource{}, false
		}
		rest = rest[1:]
		switch {
		case equalFold(rest, "_FIELD"):
			return PINSource{Dialog: int(d - '0')}, true
		case equalFold(rest, "_FIELD_AUTO"):
			return PINSource{Dialog: int(d - '0'), Auto: true}, true
		}
	}
	return PINSource{}, false
}

// Value is one resolved setting of a description: the key as written, how
// the value was written and what it refers to. Values are resolved against
// [Fields] by Check; field values themselves arrive per job (NewPlan).
type Value struct {
	Key    string    `json:"key"`  // as written
	Raw    string    `json:"raw"`  // value as written
	Kind   ValueKind `json:"kind"` // how it was written
	Text   string    `json:"text"` // literal text, field name (as declared) or word
	Source PINSource `json:"source,omitzero"`
	Pos    Pos       `json:"pos"` // of the key
	ValPos Pos       `json:"value_pos"`
}

// IsField reports whether the value refers to a [Fields] entry.
func (v *Value) IsField() bool { return v != nil && v.Kind == ValueField }

// Field is one declared [Fields] entry. Default is the value written in the
// description (usually empty); a job's value overrides it.
type Field struct {
	Name    string `json:"name"` // as declared
	Default string `json:"default,omitempty"`
	Pos     Pos    `json:"pos"`
}

// Description is the typed model of a checked description. Every key of
// docs/dsc.md has a slot; a nil *Value means the key is absent. Positions
// point into File.
type Description struct {
	Name     string   `json:"name"`
	File     *File    `json:"-"`
	Encoding Encoding `json:"encoding"`
	// Fields in declaration order.
	Fields []*Field `json:"fields"`
	// Settings holds the [Description] section.
	Settings Settings `json:"description"`
	// Applications are the [Application_X] sections in file order.
	Applications []*Application `json:"applications"`

	fields  map[string]*Field // lower-case name → field
	invalid bool              // Check found errors
}

// Field returns the declared field named name (case-insensitive), or nil.
func (d *Description) Field(name string) *Field {
	var buf [64]byte
	return d.fields[string(appendLower(buf[:0], name))]
}

// Application returns the application whose id is id (case-sensitive
// first, then case-insensitive), or nil.
func (d *Description) Application(id string) *Application {
	for _, a := range d.Applications {
		if a.ID == id {
			return a
		}
	}
	for _, a := range d.Applications {
		if equalFold(a.ID, id) {
			return a
		}
	}
	return nil
}

// Encoding is the [Encoding] header.
type Encoding struct {
	// Type is "<id>,<name>"; TypeID 1024 ("Chip") is a smart card. A
	// description without Type is taken as a chip encoding.
	Type     *Value `json:"type,omitempty"`
	TypeID   int    `json:"type_id,omitempty"`
	TypeName string `json:"type_name,omitempty"`
	// Devices is a comma list of device-class ids (8710, 8711 known).
	Devices   *Value `json:"devices,omitempty"`
	DeviceIDs []int  `json:"device_ids,omitempty"`
	// Subtype (also SubType): recorded only.
	Subtype *Value `json:"subtype,omitempty"`
	// SkipEject: boolean, passed to the station hook.
	SkipEject *Value `json:"skip_eject,omitempty"`
	// MessagingServerField: server-side routing, no effect in the agent.
	MessagingServerField *Value `json:"messaging_server_field,omitempty"`
}

// Settings is the [Description] section. Comments give the key names; aliases
// in parentheses.
type Settings struct {
	// Middleware.
	PKCS11Library          *Value `json:"pkcs11_library,omitempty"`
	PKCS11LibraryWindows32 *Value `json:"pkcs11_library_windows32,omitempty"`
	PKCS11LibraryWindows64 *Value `json:"pkcs11_library_windows64,omitempty"`
	PKCS11LibraryLinux     *Value `json:"pkcs11_library_linux,omitempty"`
	PKCS11LibraryMac       *Value `json:"pkcs11_library_mac,omitempty"`
	MiniDriverLibrary      *Value `json:"minidriver_library,omitempty"` // refused

	// Card selection and identity.
	ICCSN                  *Value `json:"iccsn,omitempty"`                    // ICCSN (iccsnfield): output field
	UseChipSerialAsIccsn   *Value `json:"use_chip_serial_as_iccsn,omitempty"` // (useChipSerialAslccsn)
	CMSCardSerialNumber    *Value `json:"cms_card_serial_number,omitempty"`
	UseSelectCriteriaIccsn *Value `json:"use_select_criteria_iccsn,omitempty"`
	SelectCriteriaIccsn    *Value `json:"select_criteria_iccsn,omitempty"`
	UseICCSNwithATR        *Value `json:"use_iccsn_with_atr,omitempty"`
	RetrieveAllTokens      *Value `json:"retrieve_all_tokens,omitempty"`
	AllTokensIccsnsField   *Value `json:"all_tokens_iccsns_field,omitempty"`
	ApplicationList        *Value `json:"application_list,omitempty"`
	ApplicationListField   *Value `json:"application_list_field,omitempty"`

	// Initialization and credentials.
	InitToken                 *Value   `json:"init_token,omitempty"`
	ChipProfile               *Value   `json:"chip_profile,omitempty"`
	ProfileParameters         *Value   `json:"profile_parameters,omitempty"`
	ProfileParams             []string `json:"profile_params,omitempty"` // field names as declared
	InitialPUK                *Value   `json:"initial_puk,omitempty"`
	InitialLabel              *Value   `json:"initial_label,omitempty"`
	PIN                       *Value   `json:"pin,omitempty"`
	PUK                       *Value   `json:"puk,omitempty"`
	OperatorPIN               *Value   `json:"operator_pin,omitempty"` // Operator_Pin
	OperatorPinIsSOCredential *Value   `json:"operator_pin_is_so_credential,omitempty"`
	SignPIN                   *Value   `json:"sign_pin,omitempty"` // (PIN2)
	SignPUK                   *Value   `json:"sign_puk,omitempty"` // always an error
	SetPIN                    *Value   `json:"set_pin,omitempty"`
	DeleteProfile             *Value   `json:"delete_profile,omitempty"`
	ClearFields               *Value   `json:"clear_fields,omitempty"`
	ClearFieldNames           []string `json:"clear_field_names,omitempty"`
	// BlockCard may also stand in [Description]; see Application.BlockCard.
	BlockCard *Value `json:"block_card,omitempty"`

	// PINOutputs are the CardPinDecryption_Output_<NAME> keys in file order.
	PINOutputs []PINOutput `json:"pin_outputs,omitempty"`

	// APDU scripts.
	ApduFile               *Value `json:"apdu_file,omitempty"`                 // (CardOSApduFile)
	ApduResponseCodesField *Value `json:"apdu_response_codes_field,omitempty"` // (CardOSApduResponseCodesField)
}

// PINOutput is one CardPinDecryption_Output_<Name> key: the output field that
// receives the PIN Name read from the card's encrypted-PIN blob.
type PINOutput struct {
	Name  string `json:"name"` // PIN1, PIN2, PIN3, PUK, PUK1, PUK2, OP or MAN (upper case)
	Value *Value `json:"value"`
}

// PINOutputNames are the accepted <NAME>s of CardPinDecryption_Output_<NAME>.
var PINOutputNames = []string{"PIN1", "PIN2", "PIN3", "PUK", "PUK1", "PUK2", "OP", "MAN"}

// Application is one [Application_X] section.
type Application struct {
	ID      string `json:"id"`      // X
	Section string `json:"section"` // as written
	Pos     Pos    `json:"pos"`

	CertTempl          *Value `json:"cert_templ,omitempty"`
	KeySize            *Value `json:"key_size,omitempty"`
	KeyType            *Value `json:"key_type,omitempty"` // RSA or EC (our extension)
	ObjectCriteria     *Value `json:"object_criteria,omitempty"`
	KeyArchivalRequest *Value `json:"key_archival_request,omitempty"`
	WriteP12Data       *Value `json:"write_p12_data,omitempty"`
	Certificate        *Value `json:"certificate,omitempty"`
	P12Password        *Value `json:"p12_password,omitempty"` // P12PASSWORD
	WriteCertificate   *Value `json:"write_certificate,omitempty"`
	WriteCertKeyList   *Value `json:"write_cert_key_list,omitempty"`
	CertKeyList        *Value `json:"cert_key_list,omitempty"`
	CertKeyListReturn  *Value `json:"cert_key_list_return_field,omitempty"` // CertKeyListReturnField
	CertKeyListMode    *Value `json:"cert_key_list_mode,omitempty"`
	CardSerialNumber   *Value `json:"card_serial_number_field,omitempty"` // CardSerialNumberField
	Location           *Value `json:"location,omitempty"`
	BlockCard          *Value `json:"block_card,omitempty"`

	// Criteria is ObjectCriteria parsed (nil if absent or malformed).
	Criteria *ObjectCriteria `json:"criteria,omitempty"`
}

// ListItem is one item of a comma-list value with its position.
type ListItem struct {
	Text string `json:"text"`
	Pos  Pos    `json:"pos"`
}

// Items splits a comma-list value (ProfileParameters, ClearFields,
// Devices) into its trimmed items, each with its position; nil for a nil
// or empty value.
func (v *Value) Items() []ListItem {
	if v == nil || v.Raw == "" {
		return nil
	}
	var out []ListItem
	for item, col := range listItems(v.Raw, v.ValPos.Col) {
		out = append(out, ListItem{Text: item, Pos: Pos{File: v.ValPos.File, Line: v.ValPos.Line, Col: col}})
	}
	return out
}
