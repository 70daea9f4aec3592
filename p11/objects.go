package p11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"
)

// Attribute is one entry of an object template: a CKA_* type and its
// value encoded as PKCS#11 stores it (CK_BBOOL one byte, CK_ULONG native).
type Attribute struct {
	Type  uint
	Value []byte
}

// Criteria is a search template: objects match when every attribute
// matches (C_FindObjectsInit, PKCS#11 v2.40 §5.10). An empty template
// matches every object the session can see.
type Criteria []Attribute

// Object classes and attribute types callers name most (PKCS#11 v2.40 §4).
const (
	ClassData        = pkcs11.CKO_DATA
	ClassCertificate = pkcs11.CKO_CERTIFICATE
	ClassPublicKey   = pkcs11.CKO_PUBLIC_KEY
	ClassPrivateKey  = pkcs11.CKO_PRIVATE_KEY
	ClassSecretKey   = pkcs11.CKO_SECRET_KEY

	AttrClass       = pkcs11.CKA_CLASS
	AttrLabel       = pkcs11.CKA_LABEL
	AttrID          = pkcs11.CKA_ID
	AttrValue       = pkcs11.CKA_VALUE
	AttrApplication = pkcs11.CKA_APPLICATION
	AttrKeyType     = pkcs11.CKA_KEY_TYPE
)

// ClassIs, LabelIs and IDIs build the usual criteria entries.
func ClassIs(class uint) Attribute   { return Attribute{AttrClass, ulongBytes(class)} }
func LabelIs(label string) Attribute { return Attribute{AttrLabel, []byte(label)} }
func IDIs(id []byte) Attribute       { return Attribute{AttrID, id} }

func ulongBytes(v uint) []byte { return pkcs11.NewAttribute(0, v).Value }

var attrNames = map[string]uint{
	"CKA_CLASS": pkcs11.CKA_CLASS, "CKA_TOKEN": pkcs11.CKA_TOKEN, "CKA_PRIVATE": pkcs11.CKA_PRIVATE,
	"CKA_LABEL": pkcs11.CKA_LABEL, "CKA_APPLICATION": pkcs11.CKA_APPLICATION, "CKA_VALUE": pkcs11.CKA_VALUE,
	"CKA_OBJECT_ID": pkcs11.CKA_OBJECT_ID, "CKA_CERTIFICATE_TYPE": pkcs11.CKA_CERTIFICATE_TYPE,
	"CKA_ISSUER": pkcs11.CKA_ISSUER, "CKA_SERIAL_NUMBER": pkcs11.CKA_SERIAL_NUMBER, "CKA_TRUSTED": pkcs11.CKA_TRUSTED,
	"CKA_CERTIFICATE_CATEGORY": pkcs11.CKA_CERTIFICATE_CATEGORY, "CKA_KEY_TYPE": pkcs11.CKA_KEY_TYPE,
	"CKA_SUBJECT": pkcs11.CKA_SUBJECT, "CKA_ID": pkcs11.CKA_ID, "CKA_SENSITIVE": pkcs11.CKA_SENSITIVE,
	"CKA_ENCRYPT": pkcs11.CKA_ENCRYPT, "CKA_DECRYPT": pkcs11.CKA_DECRYPT, "CKA_WRAP": pkcs11.CKA_WRAP,
	"CKA_UNWRAP": pkcs11.CKA_UNWRAP, "CKA_SIGN": pkcs11.CKA_SIGN, "CKA_SIGN_RECOVER": pkcs11.CKA_SIGN_RECOVER,
	"CKA_VERIFY": pkcs11.CKA_VERIFY, "CKA_DERIVE": pkcs11.CKA_DERIVE, "CKA_MODULUS": pkcs11.CKA_MODULUS,
	"CKA_MODULUS_BITS": pkcs11.CKA_MODULUS_BITS, "CKA_PUBLIC_EXPONENT": pkcs11.CKA_PUBLIC_EXPONENT,
	"CKA_EXTRACTABLE": pkcs11.CKA_EXTRACTABLE, "CKA_LOCAL": pkcs11.CKA_LOCAL,
	"CKA_NEVER_EXTRACTABLE": pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_ALWAYS_SENSITIVE": pkcs11.CKA_ALWAYS_SENSITIVE,
	"CKA_MODIFIABLE": pkcs11.CKA_MODIFIABLE, "CKA_EC_PARAMS": pkcs11.CKA_EC_PARAMS, "CKA_EC_POINT": pkcs11.CKA_EC_POINT,
	"CKA_ALWAYS_AUTHENTICATE": pkcs11.CKA_ALWAYS_AUTHENTICATE,
}

var constNames = map[string]uint{
	"CKO_DATA": pkcs11.CKO_DATA, "CKO_CERTIFICATE": pkcs11.CKO_CERTIFICATE, "CKO_PUBLIC_KEY": pkcs11.CKO_PUBLIC_KEY,
	"CKO_PRIVATE_KEY": pkcs11.CKO_PRIVATE_KEY, "CKO_SECRET_KEY": pkcs11.CKO_SECRET_KEY,
	"CKK_RSA": pkcs11.CKK_RSA, "CKK_EC": pkcs11.CKK_EC, "CKK_ECDSA": pkcs11.CKK_ECDSA, "CKK_AES": pkcs11.CKK_AES,
	"CKK_DES3": pkcs11.CKK_DES3, "CKK_GENERIC_SECRET": pkcs11.CKK_GENERIC_SECRET,
	"CKC_X_509": pkcs11.CKC_X_509, "CKC_X_509_ATTR_CERT": pkcs11.CKC_X_509_ATTR_CERT,
}

// ParseAttribute builds a template entry from the text of an encoding
// description's ObjectCriteria: attribute "CKA_LABEL" (or a number), value
// type STRING/TEXT/UTF8, HEX/BYTES/BINARY, BOOL/BOOLEAN, ULONG/INT/NUMBER,
// and the value. A value naming a CKO_/CKK_/CKC_ constant is a CK_ULONG
// whatever the type.
func ParseAttribute(attr, typ, value string) (Attribute, error) {
	a, ok := attrNames[strings.ToUpper(strings.TrimSpace(attr))]
	if !ok {
		n, err := strconv.ParseUint(strings.TrimSpace(attr), 0, 64)
		if err != nil {
			return Attribute{}, fmt.Errorf("parsing attribute %q: unknown CKA_ name", attr)
		}
		a = uint(n)
	}
	if c, ok := constNames[strings.ToUpper(strings.TrimSpace(value))]; ok {
		return Attribute{a, ulongBytes(c)}, nil
	}
	switch strings.ToUpper(strings.TrimSpace(typ)) {
	case "", "STRING", "TEXT", "UTF8", "CHAR":
		return Attribute{a, []byte(value)}, nil
	case "HEX", "BYTES", "BINARY", "BYTE_ARRAY":
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "").Replace(value))
		if err != nil {
			return Attribute{}, fmt.Errorf("parsing %s value %q as hex: %w", attr, value, err)
		}
		return Attribute{a, b}, nil
	case "BOOL", "BOOLEAN", "BBOOL":
		v, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return Attribute{}, fmt.Errorf("parsing %s value %q as a boolean: %w", attr, value, err)
		}
		if v {
			return Attribute{a, []byte{1}}, nil
		}
		return Attribute{a, []byte{0}}, nil
	case "ULONG", "INT", "INTEGER", "NUMBER", "LONG":
		n, err := strconv.ParseUint(strings.TrimSpace(value), 0, 64)
		if err != nil {
			return Attribute{}, fmt.Errorf("parsing %s value %q as a number: %w", attr, value, err)
		}
		return Attribute{a, ulongBytes(uint(n))}, nil
	}
	return Attribute{}, fmt.Errorf("parsing %s: unknown value type %q", attr, typ)
}

// ParseClass reads an object class name (CKO_CERTIFICATE, …) into a
// CKA_CLASS criteria entry.
func ParseClass(name string) (Attribute, error) {
	c, ok := constNames[strings.ToUpper(strings.TrimSpace(name))]
	if !ok || !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(name)), "CKO_") {
		return Attribute{}, fmt.Errorf("parsing object class %q: unknown CKO_ name", name)
	}
	return ClassIs(c), nil
}

// Object is a found object.
type Object struct {
	Handle uint
	Class  uint
	Label  string
	ID     []byte
}

// ClassName is the CKO_ name of the object's class.
func (o Object) ClassName() string {
	for n, v := range constNames {
		if strings.HasPrefix(n, "CKO_") && v == o.Class {
			return n
		}
	}
	return fmt.Sprintf("CKO_%#x", o.Class)
}

func template(c Criteria) []*pkcs11.Attribute {
	t := make([]*pkcs11.Attribute, len(c))
	for i, a := range c {
		t[i] = &pkcs11.Attribute{Type: a.Type, Value: a.Value}
	}
	return t
}

// find runs C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal; max 0
// means all. Call with s.mu held.
func (s *Session) find(t []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	var out []pkcs11.ObjectHandle
	err := s.relogin(func() error {
		out = out[:0]
		if err := s.t.m.ctx.FindObjectsInit(s.h, t); err != nil {
			return err
		}
		for {
			n := 64
			if max > 0 && max-len(out) < n {
				n = max - len(out)
			}
			hs, _, err := s.t.m.ctx.FindObjects(s.h, n)
			if err != nil {
				s.t.m.ctx.FindObjectsFinal(s.h)
				return err
			}
			out = append(out, hs...)
			if len(hs) < n || (max > 0 && len(out) >= max) {
				break
			}
		}
		return s.t.m.ctx.FindObjectsFinal(s.h)
	})
	if err != nil {
		return nil, fmt.Errorf("finding objects: %w", err)
	}
	return out, nil
}

// Find returns the objects matching c that the session can see (private
// objects only after Login).
func (s *Session) Find(c Criteria) ([]Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, err := s.find(template(c), 0)
	if err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(hs))
	for _, h := range hs {
		o := Object{Handle: uint(h)}
		a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading object %d: %w", h, err)
		}
		o.Class = ulong(a[0].Value)
		// CKA_ID does not exist on every class; read it apart so a data
		// object still gives its label.
		if a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)}); err == nil {
			o.Label = string(a[0].Value)
		}
		if a, err := s.t.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)}); err == nil {
			o.ID = a[0].Value
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Handle < out[j].Handle })
	return out, nil
}

// Destroy destroys objects (C_DestroyObject each).
func (s *Session) Destroy(objs ...Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range objs {
		if err := s.t.m.ctx.DestroyObject(s.h, pkcs11.ObjectHandle(o.Handle)); err != nil {
			return fmt.Errorf("destroying %s %q: %w", o.ClassName(), o.Label, err)
		}
	}
	return nil
}

// EraseObjects destroys every object the session can see (log in first to
// reach private ones) and returns how many: DeleteProfile on a card that
// is only reached through PKCS#11.
func (s *Session) EraseObjects() (int, error) {
	objs, err := s.Find(nil)
	if err != nil {
		return 0, err
	}
	if err := s.Destroy(objs...); err != nil {
		return 0, fmt.Errorf("erasing the objects of token %q: %w", s.t.label, err)
	}
	return len(objs), nil
}

// Certificate categories (CKA_CERTIFICATE_CATEGORY, v2.40 §4.6.2).
const (
	certCategoryUser      = 1
	certCategoryAuthority = 2
)

// WriteCertificate stores an X.509 certificate (CKO_CERTIFICATE, CKC_X_509)
// with CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER and CKA_VALUE from the
// certificate. An empty id links it to its key: the CKA_ID of the private
// key whose public key is the certificate's, else KeyID(public key).
func (s *Session) WriteCertificate(cert *x509.Certificate, label string, id []byte) (Object, error) {
	if len(id) == 0 {
		k, err := s.KeyFor(cert)
		switch {
		case err == nil:
			id = k.ID
		default:
			if id, err = KeyID(cert.PublicKey); err != nil {
				return Object{}, err
			}
		}
	}
	return s.writeCert(cert, label, id, certCategoryUser)
}

func (s *Session) writeCert(cert *x509.Certificate, label string, id []byte, category uint) (Object, error) {
	serial, err := asn1.Marshal(cert.SerialNumber)
	if err != nil {
		return Object{}, fmt.Errorf("encoding the certificate serial number: %w", err)
	}
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject),
		pkcs11.NewAttribute(pkcs11.CKA_ISSUER, cert.RawIssuer),
		pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, serial),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_CATEGORY, category),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var h pkcs11.ObjectHandle
	err = s.relogin(func() (err error) {
		h, err = s.t.m.ctx.CreateObject(s.h, t)
		return err
	})
	if err != nil {
		return Object{}, fmt.Errorf("writing certificate %q to token %q: %w", label, s.t.label, err)
	}
	return Object{Handle: uint(h), Class: pkcs11.CKO_CERTIFICATE, Label: label, ID: id}, nil
}

// KeyFor finds the private key that goes with a certificate: the one with
// CKA_ID KeyID(public key), else the first whose public key equals the
// certificate's.
func (s *Session) KeyFor(cert *x509.Certificate) (*Key, error) {
	if id, err := KeyID(cert.PublicKey); err == nil {
		if k, err := s.FindKey(id, ""); err == nil && samePublic(k.public, cert.PublicKey) {
			return k, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	privs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}, 0)
	if err != nil {
		return nil, err
	}
	for _, h := range privs {
		k, err := s.keyFrom(h)
		if err == nil && samePublic(k.public, cert.PublicKey) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("finding the key of certificate %q: %w", cert.Subject.CommonName, ErrObjectNotFound)
}

func samePublic(a, b any) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

// CardSerialLabel is the CKA_LABEL of the data object holding the card
// serial number a card-management system assigned.
const CardSerialLabel = "CMSCardSerialNumber"

// WriteCardSerial stores serial in the public data object labelled
// CMSCardSerialNumber (CKO_DATA, CKA_APPLICATION the same), replacing an
// old one.
func (s *Session) WriteCardSerial(serial []byte) error {
	if err := s.writeData(CardSerialLabel, serial); err != nil {
		return fmt.Errorf("writing the card serial number to token %q: %w", s.t.label, err)
	}
	return nil
}

// ReadCardSerial reads the CMSCardSerialNumber data object.
func (s *Session) ReadCardSerial() ([]byte, error) {
	v, err := s.ReadData(CardSerialLabel)
	if err != nil {
		return nil, fmt.Errorf("reading the card serial number: %w", err)
	}
	return v, nil
}

// WriteData stores value in a public token data object (CKO_DATA,
// PKCS#11 v2.40 §4.5) labelled label, CKA_APPLICATION the same, replacing
// any data object with that label: e.g. the card's "Encrypted PINs" blob
// (docs/pinblob.md), which is encrypted already and must be readable
// before a login. Most tokens want the user logged in to create objects.
func (s *Session) WriteData(label string, value []byte) error {
	if err := s.writeData(label, value); err != nil {
		return fmt.Errorf("writing data object %q to token %q: %w", label, s.t.label, err)
	}
	return nil
}

func (s *Session) writeData(label string, value []byte) error {
	old, err := s.Find(Criteria{ClassIs(ClassData), LabelIs(label)})
	if err != nil {
		return err
	}
	if err := s.Destroy(old...); err != nil {
		return err
	}
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relogin(func() error {
		_, err := s.t.m.ctx.CreateObject(s.h, t)
		return err
	})
}

// ReadData returns the value of the data object labelled label (the first
// when there are several), or an error wrapping ErrObjectNotFound.
func (s *Session) ReadData(label string) ([]byte, error) {
	objs, err := s.Find(Criteria{ClassIs(ClassData), LabelIs(label)})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("data object %q: %w", label, ErrObjectNotFound)
	}
	return s.Value(objs[0])
}

// Value reads an object's CKA_VALUE.
func (s *Session) Value(o Object) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.t.m.ctx.GetAttributeValue(s.h, pkcs11.ObjectHandle(o.Handle), []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading the value of %s %q: %w", o.ClassName(), o.Label, err)
	}
	return a[0].Value, nil
}

// CertEntry is a certificate on a token with what a certificate filter
// asks about it and its key.
type CertEntry struct {
	DER   []byte
	Cert  *x509.Certificate // nil when DER does not parse
	ID    []byte            // CKA_ID
	Label string            // CKA_LABEL

	HasKey   bool   // a private key with the same CKA_ID is on the token
	KeyLabel string // that key's CKA_LABEL
	KeyType  string // "RSA" or "EC", from the certificate
	KeyBits  int

	TokenLabel, TokenSerial, TokenModel string
}

// Certificates lists the X.509 certificates the session can see, each
// with its matching private key (same CKA_ID; log in to see keys).
func (s *Session) Certificates() ([]CertEntry, error) {
	objs, err := s.Find(Criteria{ClassIs(ClassCertificate)})
	if err != nil {
		return nil, err
	}
	keys, err := s.Find(Criteria{ClassIs(ClassPrivateKey)})
	if err != nil {
		return nil, err
	}
	var out []CertEntry
	for _, o := range objs {
		der, err := s.Value(o)
		if err != nil {
			return nil, err
		}
		e := CertEntry{DER: der, ID: o.ID, Label: o.Label,
			TokenLabel: s.t.label, TokenSerial: s.t.info.Serial, TokenModel: s.t.info.Model}
		if c, err := x509.ParseCertificate(der); err == nil {
			e.Cert = c
			switch p := c.PublicKey.(type) {
			case *rsa.PublicKey:
				e.KeyType, e.KeyBits = "RSA", p.N.BitLen()
			case *ecdsa.PublicKey:
				e.KeyType, e.KeyBits = "EC", p.Curve.Params().BitSize
			}
		}
		for _, k := range keys {
			if len(o.ID) > 0 && bytes.Equal(k.ID, o.ID) {
				e.HasKey, e.KeyLabel = true, k.Label
				break
			}
		}
		out = append(out, e)
	}
	return out, nil
}
