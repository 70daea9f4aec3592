package certfilter

// param is one fact a filter can test. The order is the order facts are
// listed in output.
type param uint8

const (
	pIssuerC param = iota
	pIssuerCN
	pIssuerL
	pIssuerO
	pIssuerOU
	pIssuerST
	pIssuerStreet
	pIssuerEmail
	pIssuerUID
	pSubjectC
	pSubjectCN
	pSubjectL
	pSubjectO
	pSubjectOU
	pSubjectST
	pSubjectStreet
	pSubjectEmail
	pSubjectUID
	pKeyUsage
	pSerial
	pKeyID
	pKeyPublicKey
	pKeySize
	pKeyType
	pTokenID
	pTokenType
	pTokenUserID
	pTokenProfileType
	numParams
)

// dnAttrs are the DN attribute suffixes of cert.issuer.* and cert.subject.*,
// in param order, with their OIDs (RFC 4519, RFC 5280 Appendix A).
var dnAttrs = [...]struct {
	name string
	oid  []int
}{
	{"c", []int{2, 5, 4, 6}},
	{"cn", []int{2, 5, 4, 3}},
	{"l", []int{2, 5, 4, 7}},
	{"o", []int{2, 5, 4, 10}},
	{"ou", []int{2, 5, 4, 11}},
	{"st", []int{2, 5, 4, 8}},
	{"street", []int{2, 5, 4, 9}},
	{"email", []int{1, 2, 840, 113549, 1, 9, 1}}, // PKCS #9 emailAddress
	{"uid", []int{0, 9, 2342, 19200300, 100, 1, 1}},
}

// paramNames are the canonical names, indexed by param.
var paramNames [numParams]string

// paramByName maps every accepted name, aliases included, to its param.
var paramByName = map[string]param{}

func init() {
	for i, a := range dnAttrs {
		paramNames[pIssuerC+param(i)] = "cert.issuer." + a.name
		paramNames[pSubjectC+param(i)] = "cert.subject." + a.name
	}
	paramNames[pKeyUsage] = "cert.keyusage"
	paramNames[pSerial] = "cert.serial"
	paramNames[pKeyID] = "key.id"
	paramNames[pKeyPublicKey] = "key.publickey"
	paramNames[pKeySize] = "key.size"
	paramNames[pKeyType] = "key.type"
	paramNames[pTokenID] = "token.id"
	paramNames[pTokenType] = "token.type"
	paramNames[pTokenUserID] = "token.userid"
	paramNames[pTokenProfileType] = "token.profiletype"
	for p, n := range paramNames {
		paramByName[n] = param(p)
	}
	paramByName["cert.issuer.s"] = pIssuerST // the spec's variant of st
	paramByName["cert.subject.s"] = pSubjectST
}

func (p param) String() string { return paramNames[p] }

// Params lists the canonical param names in output order. The aliases
// cert.issuer.s and cert.subject.s (for .st) are accepted but not listed.
func Params() []string { return append([]string(nil), paramNames[:]...) }
