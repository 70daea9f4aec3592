package dsc

// keyKind says how a key's value is read (docs/dsc.md, "Values").
type keyKind uint8

const (
	kName      keyKind = iota + 1 // a name taken verbatim ('#' stripped): files, paths
	kWord                         // a declared field, else a word taken verbatim
	kBool                         // #true/#false, bare true/false, or a field
	kInt                          // #n, bare n, or a field
	kValue                        // #literal or a field
	kPIN                          // #literal, a field, or a !FROM_… source
	kField                        // a declared field (input or output)
	kFieldList                    // comma list of declared fields
	kCriteria                     // ObjectCriteria
	kRefused                      // never allowed (SignPUK, MiniDriverLibrary)
	kType                         // [Encoding] Type
	kDevices                      // [Encoding] Devices
)

// sectionKind classifies a section header.
type sectionKind uint8

const (
	secUnknown sectionKind = iota
	secEncoding
	secFields
	secDescription
	secApplication
)

var sectionNames = [...]string{"", "Encoding", "Fields", "Description", "Application_X"}

// keyInfo describes one key of docs/dsc.md.
type keyInfo struct {
	name    string // canonical spelling
	section sectionKind
	kind    keyKind
	desc    func(d *Description) **Value // slot in Encoding/Settings
	app     func(a *Application) **Value // slot in Application
}

// keys lists every key; aliases map to the same slot (a key and its alias
// in one section are duplicates).
var keys = []keyInfo{
	{name: "Type", section: secEncoding, kind: kType, desc: func(d *Description) **Value { return &d.Encoding.Type }},
	{name: "Devices", section: secEncoding, kind: kDevices, desc: func(d *Description) **Value { return &d.Encoding.Devices }},
	{name: "Subtype", section: secEncoding, kind: kName, desc: func(d *Description) **Value { return &d.Encoding.Subtype }},
	{name: "SkipEject", section: secEncoding, kind: kBool, desc: func(d *Description) **Value { return &d.Encoding.SkipEject }},
	{name: "MessagingServerField", section: secEncoding, kind: kName, desc: func(d *Description) **Value { return &d.Encoding.MessagingServerField }},

	{name: "PKCS11Library", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.PKCS11Library }},
	{name: "PKCS11LibraryWindows32", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.PKCS11LibraryWindows32 }},
	{name: "PKCS11LibraryWindows64", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.PKCS11LibraryWindows64 }},
	{name: "PKCS11LibraryLinux", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.PKCS11LibraryLinux }},
	{name: "PKCS11LibraryMac", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.PKCS11LibraryMac }},
	{name: "MiniDriverLibrary", section: secDescription, kind: kRefused, desc: func(d *Description) **Value { return &d.Settings.MiniDriverLibrary }},
	{name: "ICCSN", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.ICCSN }},
	{name: "iccsnfield", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.ICCSN }},
	{name: "useChipSerialAsIccsn", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.UseChipSerialAsIccsn }},
	{name: "useChipSerialAslccsn", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.UseChipSerialAsIccsn }},
	{name: "CMSCardSerialNumber", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.CMSCardSerialNumber }},
	{name: "UseSelectCriteriaIccsn", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.UseSelectCriteriaIccsn }},
	{name: "SelectCriteriaIccsn", section: secDescription, kind: kValue, desc: func(d *Description) **Value { return &d.Settings.SelectCriteriaIccsn }},
	{name: "UseICCSNwithATR", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.UseICCSNwithATR }},
	{name: "RetrieveAllTokens", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.RetrieveAllTokens }},
	{name: "AllTokensIccsnsField", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.AllTokensIccsnsField }},
	{name: "ApplicationList", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.ApplicationList }},
	{name: "ApplicationListField", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.ApplicationListField }},
	{name: "InitToken", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.InitToken }},
	{name: "ChipProfile", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.ChipProfile }},
	{name: "ProfileParameters", section: secDescription, kind: kFieldList, desc: func(d *Description) **Value { return &d.Settings.ProfileParameters }},
	{name: "InitialPUK", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.InitialPUK }},
	{name: "InitialLabel", section: secDescription, kind: kValue, desc: func(d *Description) **Value { return &d.Settings.InitialLabel }},
	{name: "PIN", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.PIN }},
	{name: "PUK", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.PUK }},
	{name: "Operator_Pin", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.OperatorPIN }},
	{name: "OperatorPinIsSOCredential", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.OperatorPinIsSOCredential }},
	{name: "SignPIN", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.SignPIN }},
	{name: "PIN2", section: secDescription, kind: kPIN, desc: func(d *Description) **Value { return &d.Settings.SignPIN }},
	{name: "SignPUK", section: secDescription, kind: kRefused, desc: func(d *Description) **Value { return &d.Settings.SignPUK }},
	{name: "SetPIN", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.SetPIN }},
	{name: "DeleteProfile", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.DeleteProfile }},
	{name: "ClearFields", section: secDescription, kind: kFieldList, desc: func(d *Description) **Value { return &d.Settings.ClearFields }},
	{name: "BlockCard", section: secDescription, kind: kBool, desc: func(d *Description) **Value { return &d.Settings.BlockCard }},
	{name: "ApduFile", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.ApduFile }},
	{name: "CardOSApduFile", section: secDescription, kind: kName, desc: func(d *Description) **Value { return &d.Settings.ApduFile }},
	{name: "ApduResponseCodesField", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.ApduResponseCodesField }},
	{name: "CardOSApduResponseCodesField", section: secDescription, kind: kField, desc: func(d *Description) **Value { return &d.Settings.ApduResponseCodesField }},

	{name: "CertTempl", section: secApplication, kind: kWord, app: func(a *Application) **Value { return &a.CertTempl }},
	{name: "KeySize", section: secApplication, kind: kInt, app: func(a *Application) **Value { return &a.KeySize }},
	{name: "KeyType", section: secApplication, kind: kWord, app: func(a *Application) **Value { return &a.KeyType }},
	{name: "ObjectCriteria", section: secApplication, kind: kCriteria, app: func(a *Application) **Value { return &a.ObjectCriteria }},
	{name: "KeyArchivalRequest", section: secApplication, kind: kBool, app: func(a *Application) **Value { return &a.KeyArchivalRequest }},
	{name: "WriteP12Data", section: secApplication, kind: kBool, app: func(a *Application) **Value { return &a.WriteP12Data }},
	{name: "Certificate", section: secApplication, kind: kField, app: func(a *Application) **Value { return &a.Certificate }},
	{name: "P12PASSWORD", section: secApplication, kind: kField, app: func(a *Application) **Value { return &a.P12Password }},
	{name: "WriteCertificate", section: secApplication, kind: kBool, app: func(a *Application) **Value { return &a.WriteCertificate }},
	{name: "WriteCertKeyList", section: secApplication, kind: kBool, app: func(a *Application) **Value { return &a.WriteCertKeyList }},
	{name: "CertKeyList", section: secApplication, kind: kField, app: func(a *Application) **Value { return &a.CertKeyList }},
	{name: "CertKeyListReturnField", section: secApplication, kind: kField, app: func(a *Application) **Value { return &a.CertKeyListReturn }},
	{name: "CertKeyListMode", section: secApplication, kind: kWord, app: func(a *Application) **Value { return &a.CertKeyListMode }},
	{name: "CardSerialNumberField", section: secApplication, kind: kField, app: func(a *Application) **Value { return &a.CardSerialNumber }},
	{name: "Location", section: secApplication, kind: kWord, app: func(a *Application) **Value { return &a.Location }},
	{name: "BlockCard", section: secApplication, kind: kBool, app: func(a *Application) **Value { return &a.BlockCard }},
}

// pinOutputPrefix starts the CardPinDecryption_Output_<NAME> keys.
const pinOutputPrefix = "CardPinDecryption_Output_"

type keyRef struct {
	sec  sectionKind
	name string // lower case
}

var keyIndex = func() map[keyRef]*keyInfo {
	m := make(map[keyRef]*keyInfo, len(keys))
	for i := range keys {
		k := &keys[i]
		m[keyRef{k.section, string(appendLower(nil, k.name))}] = k
	}
	return m
}()

// lookupKey finds a key of a section, case-insensitively, without
// allocating.
func lookupKey(sec sectionKind, name string) *keyInfo {
	var buf [64]byte
	if len(name) > len(buf) {
		return nil
	}
	return keyIndex[keyRef{sec, string(appendLower(buf[:0], name))}]
}

// suggest returns the candidate closest to s (case-insensitive edit
// distance), or "" if none is close.
func suggest(s string, candidates []string) string {
	best, bestD := "", min(3, len(s)/3)+1 // short names get no suggestion
	ls := string(appendLower(nil, s))
	for _, c := range candidates {
		if d := editDistance(ls, string(appendLower(nil, c))); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyNames returns the canonical key names of a section.
func keyNames(sec sectionKind) []string {
	var out []string
	for _, k := range keys {
		if k.section == sec {
			out = append(out, k.name)
		}
	}
	if sec == secDescription {
		for _, n := range PINOutputNames {
			out = append(out, pinOutputPrefix+n)
		}
	}
	return out
}
