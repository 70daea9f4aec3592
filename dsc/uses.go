package dsc

// FieldRole says how a description uses a field's value: what a form that
// asks for the value should offer (docs/gui.md, "Standalone card
// initialization").
type FieldRole uint8

const (
	// RoleText: a value taken as text (#literal or field keys: labels,
	// criteria, numbers written as text).
	RoleText FieldRole = iota + 1
	// RolePIN: a PIN, PUK or operator credential; never shown.
	RolePIN
	// RoleBool: a true/false key (DeleteProfile, InitToken, …).
	RoleBool
	// RoleNumber: a numeric key (KeySize, …).
	RoleNumber
	// RoleProfileParam: a card-profile parameter; the job carries it
	// base64-encoded (docs/dsc.md, "ProfileParameters").
	RoleProfileParam
	// RolePassword: a PKCS#12 password; never shown.
	RolePassword
	// RoleOutput: a key that names a field the job writes back (iccsnfield,
	// AllTokensIccsnsField, CardPinDecryption_Output_…, …).
	RoleOutput
	// RoleData: binary data carried base64-encoded (Certificate,
	// CertKeyList: PKCS#12 and certificate lists).
	RoleData
	// RoleCleared: listed in ClearFields (never returned).
	RoleCleared
)

var roleNames = [...]string{"", "text", "pin", "bool", "number", "profile-parameter", "password", "output", "data", "cleared"}

func (r FieldRole) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "FieldRole(?)"
}

// FieldUse is one place a description refers to a field.
type FieldUse struct {
	Key  string    // the key as written
	Role FieldRole // how the key reads the value
	Pos  Pos       // of the reference
}

// Uses returns every reference to the declared field name (matched
// case-insensitively), in file order of the sections, nil for a field
// nothing refers to. It reads the checked model, so aliases count once.
func (d *Description) Uses(name string) []FieldUse {
	f := d.Field(name)
	if f == nil {
		return nil
	}
	var out []FieldUse
	add := func(v *Value, k *keyInfo) {
		if v == nil {
			return
		}
		if k.kind == kFieldList {
			role := RoleText
			switch {
			case equalFold(k.name, "ProfileParameters"):
				role = RoleProfileParam
			case equalFold(k.name, "ClearFields"):
				role = RoleCleared
			}
			for _, it := range v.Items() {
				if equalFold(it.Text, f.Name) {
					out = append(out, FieldUse{Key: v.Key, Role: role, Pos: it.Pos})
				}
			}
			return
		}
		if v.Kind != ValueField || !equalFold(v.Text, f.Name) {
			return
		}
		out = append(out, FieldUse{Key: v.Key, Role: keyRole(k), Pos: v.ValPos})
	}
	// Aliases share a slot: visit each slot once.
	seen := map[**Value]bool{}
	for i := range keys {
		k := &keys[i]
		if k.desc == nil {
			continue
		}
		slot := k.desc(d)
		if seen[slot] {
			continue
		}
		seen[slot] = true
		add(*slot, k)
	}
	for _, o := range d.Settings.PINOutputs {
		add(o.Value, &keyInfo{name: o.Value.Key, kind: kField})
	}
	for _, a := range d.Applications {
		seen := map[**Value]bool{}
		for i := range keys {
			k := &keys[i]
			if k.app == nil {
				continue
			}
			slot := k.app(a)
			if seen[slot] {
				continue
			}
			seen[slot] = true
			add(*slot, k)
		}
	}
	return out
}

// keyRole is how a key of kind k reads a field's value.
func keyRole(k *keyInfo) FieldRole {
	switch k.kind {
	case kPIN:
		return RolePIN
	case kBool:
		return RoleBool
	case kInt:
		return RoleNumber
	case kField:
		switch {
		case equalFold(k.name, "P12PASSWORD"):
			return RolePassword
		case equalFold(k.name, "Certificate"), equalFold(k.name, "CertKeyList"):
			return RoleData
		case equalFold(k.name, "CMSCardSerialNumber"), equalFold(k.name, "ApplicationListField"),
			equalFold(k.name, "CardSerialNumberField"):
			return RoleText // values the job gives
		}
		return RoleOutput
	}
	return RoleText
}
