package certfilter

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Token types (token.type) that cardwright reports.
const (
	TokenSmartCard = "SMARTCARD" // a PKCS#11 token in a hardware or removable slot
	TokenSoftware  = "SOFTWARE"  // a software token (SoftHSM, an agent-managed PKCS#12 file)
)

// Key types (key.type).
const (
	KeyRSA   = "RSA"
	KeyECC   = "ECC"
	KeyEdDSA = "EdDSA" // not in the incumbent's list; Ed25519 certificates
)

// Token holds the token facts of a candidate. Empty fields are absent.
type Token struct {
	ID          string // token.id: the token's serial number
	Type        string // token.type: TokenSmartCard, TokenSoftware, or what the agent knows
	UserID      string // token.userid: the user name tied to the token, where known
	ProfileType string // token.profiletype: e.g. SW, FILEP12SW, from the agent
}

// KeyRef identifies the private key that goes with a certificate.
type KeyRef struct {
	ID    []byte // CKA_ID (PKCS#11 v2.40 §4.6.3); key.id is its upper-case hex
	Label string // CKA_LABEL; key.id when the key has no CKA_ID
}

// Candidate is a certificate with the facts a filter tests. Build it with
// NewCandidate; it is read-only afterwards and safe for concurrent use.
type Candidate struct {
	Cert *x509.Certificate // nil for a key without a certificate

	vals     [numParams][]string // string facts; absent when empty
	size     int                 // key.size in bits; 0 when unknown
	keyIDHex bool                // key.id is CKA_ID hex (compared case-insensitively)
}

// NewCandidate gathers the facts of cert (may be nil), of the key that goes
// with it, and of its token. Key type, size and public key come from the
// certificate's SubjectPublicKeyInfo.
func NewCandidate(cert *x509.Certificate, key KeyRef, tok Token) *Candidate {
	c := &Candidate{Cert: cert}
	if cert != nil {
		dn(&c.vals, pIssuerC, cert.Issuer)
		dn(&c.vals, pSubjectC, cert.Subject)
		for _, e := range cert.EmailAddresses { // RFC 5280 §4.2.1.6: e-mail belongs in the SAN
			if !contains(c.vals[pSubjectEmail], e) {
				c.vals[pSubjectEmail] = append(c.vals[pSubjectEmail], e)
			}
		}
		if u := KeyUsageNames(cert); len(u) > 0 {
			c.set(pKeyUsage, strings.Join(u, ","))
		}
		if cert.SerialNumber != nil {
			c.set(pSerial, strings.ToUpper(cert.SerialNumber.Text(16)))
		}
		if len(cert.RawSubjectPublicKeyInfo) > 0 {
			c.set(pKeyPublicKey, base64.StdEncoding.EncodeToString(cert.RawSubjectPublicKeyInfo))
		}
		switch k := cert.PublicKey.(type) {
		case *rsa.PublicKey:
			c.set(pKeyType, KeyRSA)
			c.size = k.N.BitLen()
		case *ecdsa.PublicKey:
			c.set(pKeyType, KeyECC)
			c.size = k.Curve.Params().BitSize
		case ed25519.PublicKey:
			c.set(pKeyType, KeyEdDSA)
			c.size = 256
		}
	}
	if len(key.ID) > 0 {
		c.set(pKeyID, strings.ToUpper(hex.EncodeToString(key.ID)))
		c.keyIDHex = true
	} else {
		c.set(pKeyID, key.Label)
	}
	c.set(pTokenID, tok.ID)
	c.set(pTokenType, tok.Type)
	c.set(pTokenUserID, tok.UserID)
	c.set(pTokenProfileType, tok.ProfileType)
	return c
}

func (c *Candidate) set(p param, v string) {
	if v != "" {
		c.vals[p] = []string{v}
	}
}

// dn appends the attributes of n, in the order of the certificate's
// RDNSequence, to the params starting at first.
func dn(vals *[numParams][]string, first param, n pkix.Name) {
	for _, atv := range n.Names {
		for i, a := range dnAttrs {
			if atv.Type.Equal(asn1.ObjectIdentifier(a.oid)) {
				s, ok := atv.Value.(string)
				if !ok {
					s = fmt.Sprint(atv.Value)
				}
				vals[first+param(i)] = append(vals[first+param(i)], s)
				break
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// keyUsageNames are the keyUsage bits by bit number (RFC 5280 §4.2.1.3).
// Bit 1 is named nonRepudiation, as most tools still call it, rather than
// contentCommitment.
var keyUsageNames = [...]string{
	"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
	"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
}

// extKeyUsageNames names the extended key usages Go knows (RFC 5280
// §4.2.1.12 and vendor OIDs).
var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:                     "serverAuth",
	x509.ExtKeyUsageClientAuth:                     "clientAuth",
	x509.ExtKeyUsageCodeSigning:                    "codeSigning",
	x509.ExtKeyUsageEmailProtection:                "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	x509.ExtKeyUsageTimeStamping:                   "timeStamping",
	x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
}

// otherExtKeyUsageNames names extended key usages Go does not know but
// smart-card certificates carry.
var otherExtKeyUsageNames = map[string]string{
	"1.3.6.1.4.1.311.20.2.2":  "smartcardLogon",       // Microsoft smart card logon
	"1.3.6.1.5.2.3.4":         "pkinitClientAuth",     // RFC 4556 §3.2.2 id-pkinit-KPClientAuth
	"1.3.6.1.5.5.7.3.36":      "documentSigning",      // RFC 9336 id-kp-documentSigning
	"1.3.6.1.4.1.311.10.3.12": "msDocumentSigning",    // Microsoft document signing
	"1.3.6.1.4.1.311.10.3.4":  "encryptingFileSystem", // Microsoft EFS
}

// KeyUsageNames lists the certificate's key usages (keyUsage bits in bit
// order) followed by its extended key usages (in certificate order); an
// extended usage without a name is given as its dotted OID. cert.keyusage
// is this list joined with ",".
func KeyUsageNames(cert *x509.Certificate) []string {
	var names []string
	for i, n := range keyUsageNames {
		if cert.KeyUsage&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	// ExtKeyUsage and UnknownExtKeyUsage lose their relative order; take
	// the extension itself when it parses.
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}) {
			continue
		}
		var oids []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(ext.Value, &oids); err != nil || len(rest) > 0 {
			break
		}
		for _, oid := range oids {
			names = append(names, extKeyUsageName(oid))
		}
		return names
	}
	for _, u := range cert.ExtKeyUsage {
		names = append(names, extKeyUsageNames[u])
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		names = append(names, extKeyUsageName(oid))
	}
	return names
}

func extKeyUsageName(oid asn1.ObjectIdentifier) string {
	s := oid.String()
	if n, ok := otherExtKeyUsageNames[s]; ok {
		return n
	}
	for u, o := range oidOfExtKeyUsage {
		if o == s {
			return extKeyUsageNames[u]
		}
	}
	return s
}

// oidOfExtKeyUsage is RFC 5280 §4.2.1.12 and the vendor OIDs crypto/x509
// maps to its ExtKeyUsage constants.
var oidOfExtKeyUsage = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "2.5.29.37.0",
	x509.ExtKeyUsageServerAuth:                     "1.3.6.1.5.5.7.3.1",
	x509.ExtKeyUsageClientAuth:                     "1.3.6.1.5.5.7.3.2",
	x509.ExtKeyUsageCodeSigning:                    "1.3.6.1.5.5.7.3.3",
	x509.ExtKeyUsageEmailProtection:                "1.3.6.1.5.5.7.3.4",
	x509.ExtKeyUsageIPSECEndSystem:                 "1.3.6.1.5.5.7.3.5",
	x509.ExtKeyUsageIPSECTunnel:                    "1.3.6.1.5.5.7.3.6",
	x509.ExtKeyUsageIPSECUser:                      "1.3.6.1.5.5.7.3.7",
	x509.ExtKeyUsageTimeStamping:                   "1.3.6.1.5.5.7.3.8",
	x509.ExtKeyUsageOCSPSigning:                    "1.3.6.1.5.5.7.3.9",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "1.3.6.1.4.1.311.10.3.3",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "2.16.840.1.113730.4.1",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "1.3.6.1.4.1.311.2.1.22",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "1.3.6.1.4.1.311.61.1.1",
}

// KeySize is key.size in bits, 0 when unknown.
func (c *Candidate) KeySize() int { return c.size }

// Values returns the values of a param (canonical name or alias) as text;
// key.size is given in decimal. It reports false for an unknown param.
func (c *Candidate) Values(name string) ([]string, bool) {
	p, ok := paramByName[name]
	if !ok {
		return nil, false
	}
	if p == pKeySize {
		if c.size == 0 {
			return nil, true
		}
		return []string{strconv.Itoa(c.size)}, true
	}
	return append([]string(nil), c.vals[p]...), true
}

// MarshalJSON gives the facts as an object keyed by canonical param name,
// absent facts left out: DN attributes as lists, key.size as a number, the
// others as strings.
func (c *Candidate) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for p := range numParams {
		var v any
		switch {
		case p == pKeySize:
			if c.size == 0 {
				continue
			}
			v = c.size
		case len(c.vals[p]) == 0:
			continue
		case p <= pSubjectUID:
			v = c.vals[p]
		default:
			v = c.vals[p][0]
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(paramNames[p])
		val, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
