package p11

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// TokenInfo is the part of CK_TOKEN_INFO (PKCS#11 v2.40 §3.2) callers use.
type TokenInfo struct {
	Label, Manufacturer, Model, Serial string
	Flags                              uint
	MinPIN, MaxPIN                     uint
}

// Initialized reports CKF_TOKEN_INITIALIZED.
func (i TokenInfo) Initialized() bool { return i.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 }

// UserPINInitialized reports CKF_USER_PIN_INITIALIZED.
func (i TokenInfo) UserPINInitialized() bool { return i.Flags&pkcs11.CKF_USER_PIN_INITIALIZED != 0 }

// ProtectedAuthPath reports CKF_PROTECTED_AUTHENTICATION_PATH: the token
// takes its PINs on a keypad of its own (a PIN-pad reader), see
// Session.LoginPad.
func (i TokenInfo) ProtectedAuthPath() bool {
	return i.Flags&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH != 0
}

// FlagNames lists the set CKF_* token flags by name, for diagnostics.
func (i TokenInfo) FlagNames() []string {
	var out []string
	for _, f := range tokenFlagNames {
		if i.Flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

var tokenFlagNames = []struct {
	bit  uint
	name string
}{
	{pkcs11.CKF_RNG, "RNG"},
	{pkcs11.CKF_WRITE_PROTECTED, "WRITE_PROTECTED"},
	{pkcs11.CKF_LOGIN_REQUIRED, "LOGIN_REQUIRED"},
	{pkcs11.CKF_USER_PIN_INITIALIZED, "USER_PIN_INITIALIZED"},
	{pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH, "PROTECTED_AUTHENTICATION_PATH"},
	{pkcs11.CKF_TOKEN_INITIALIZED, "TOKEN_INITIALIZED"},
	{pkcs11.CKF_USER_PIN_COUNT_LOW, "USER_PIN_COUNT_LOW"},
	{pkcs11.CKF_USER_PIN_FINAL_TRY, "USER_PIN_FINAL_TRY"},
	{pkcs11.CKF_USER_PIN_LOCKED, "USER_PIN_LOCKED"},
	{pkcs11.CKF_USER_PIN_TO_BE_CHANGED, "USER_PIN_TO_BE_CHANGED"},
	{pkcs11.CKF_SO_PIN_COUNT_LOW, "SO_PIN_COUNT_LOW"},
	{pkcs11.CKF_SO_PIN_FINAL_TRY, "SO_PIN_FINAL_TRY"},
	{pkcs11.CKF_SO_PIN_LOCKED, "SO_PIN_LOCKED"},
	{pkcs11.CKF_SO_PIN_TO_BE_CHANGED, "SO_PIN_TO_BE_CHANGED"},
}

// Slot is one slot of a module and, when present, its token.
type Slot struct {
	ID           uint
	Description  string // CK_SLOT_INFO slotDescription: middleware put the reader name here
	Manufacturer string
	TokenPresent bool
	Token        TokenInfo // zero unless TokenPresent
}

// Slots lists every slot (C_GetSlotList with tokenPresent false, then
// C_GetSlotInfo and, for a present token, C_GetTokenInfo).
func (m *Module) Slots() ([]Slot, error) {
	ids, err := m.ctx.GetSlotList(false)
	if err != nil {
		return nil, fmt.Errorf("listing slots: %w", err)
	}
	out := make([]Slot, 0, len(ids))
	for _, id := range ids {
		si, err := m.ctx.GetSlotInfo(id)
		if err != nil {
			return nil, fmt.Errorf("reading slot %d: %w", id, err)
		}
		s := Slot{ID: id, Description: strings.TrimSpace(si.SlotDescription), Manufacturer: strings.TrimSpace(si.ManufacturerID),
			TokenPresent: si.Flags&pkcs11.CKF_TOKEN_PRESENT != 0}
		if s.TokenPresent {
			ti, err := m.tokenInfo(id)
			if is(err, pkcs11.CKR_TOKEN_NOT_PRESENT) || is(err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED) ||
				is(err, pkcs11.CKR_GENERAL_ERROR) || is(err, pkcs11.CKR_DEVICE_ERROR) {
				// Removed between the two calls, unusable, or being
				// re-initialised by another process (SoftHSM2 rewrites a
				// token's files in C_InitToken): not a token to list.
				s.TokenPresent = false
				out = append(out, s)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading the token in slot %d: %w", id, err)
			}
			s.Token = tokenInfo(ti)
		}
		out = append(out, s)
	}
	return out, nil
}

// tokenInfo is C_GetTokenInfo, asked again a few times while it fails
// with a general or device error: another process may be re-initialising
// that token for a few milliseconds.
func (m *Module) tokenInfo(id uint) (pkcs11.TokenInfo, error) {
	var ti pkcs11.TokenInfo
	var err error
	for range 5 {
		ti, err = m.ctx.GetTokenInfo(id)
		if !is(err, pkcs11.CKR_GENERAL_ERROR) && !is(err, pkcs11.CKR_DEVICE_ERROR) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ti, err
}

func tokenInfo(ti pkcs11.TokenInfo) TokenInfo {
	return TokenInfo{
		Label:        strings.TrimRight(ti.Label, " \x00"),
		Manufacturer: strings.TrimRight(ti.ManufacturerID, " \x00"),
		Model:        strings.TrimRight(ti.Model, " \x00"),
		Serial:       strings.TrimRight(ti.SerialNumber, " \x00"),
		Flags:        ti.Flags,
		MinPIN:       ti.MinPinLen,
		MaxPIN:       ti.MaxPinLen,
	}
}

// Token is a token in a slot of a module. Slot IDs are not stable (SoftHSM2
// renumbers a slot after C_InitToken, a reader may come back as another
// slot): keep the serial and find the token again rather than keep a Token
// across jobs.
type Token struct {
	m             *Module
	slot          uint
	label, serial string // fixed for the Token's life (C_InitToken gives a new Token)

	mu   sync.Mutex // guards info, which Refresh rewrites
	info TokenInfo
}

func makeToken(m *Module, slot uint, info TokenInfo) *Token {
	return &Token{m: m, slot: slot, label: info.Label, serial: info.Serial, info: info}
}

// Module is the token's module.
func (t *Token) Module() *Module { return t.m }

// SlotID is the slot the token was found in.
func (t *Token) SlotID() uint { return t.slot }

// Info is the token information as of when the token was found or last
// refreshed.
func (t *Token) Info() TokenInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

// Label and Serial are shorthands for Info().
func (t *Token) Label() string  { return t.label }
func (t *Token) Serial() string { return t.serial }

// ICCSN is the token serial used as the card's ICCSN: the hex-decoded
// serialNumber when it is hex of even length (SoftHSM2 and most
// middleware), else its ASCII bytes.
func (t *Token) ICCSN() []byte {
	s := t.serial
	if len(s)%2 == 0 {
		if b, err := hex.DecodeString(s); err == nil && len(b) > 0 {
			return b
		}
	}
	return []byte(s)
}

// Refresh reads the token information again (C_GetTokenInfo).
func (t *Token) Refresh() (TokenInfo, error) {
	ti, err := t.m.tokenInfo(t.slot)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		return t.info, fmt.Errorf("reading token info of slot %d: %w", t.slot, err)
	}
	t.info = tokenInfo(ti)
	return t.info, nil
}

// TokenInSlot returns the token in a slot.
func (m *Module) TokenInSlot(id uint) (*Token, error) {
	ti, err := m.tokenInfo(id)
	if err != nil {
		return nil, fmt.Errorf("reading the token in slot %d: %w", id, err)
	}
	return makeToken(m, id, tokenInfo(ti)), nil
}

// Tokens lists the present tokens.
func (m *Module) Tokens() ([]*Token, error) {
	slots, err := m.Slots()
	if err != nil {
		return nil, err
	}
	var out []*Token
	for _, s := range slots {
		if s.TokenPresent {
			out = append(out, makeToken(m, s.ID, s.Token))
		}
	}
	return out, nil
}

// FindToken finds the one present token whose serial or label is ref. A
// serial match wins over a label match; two tokens with the label are
// ErrAmbiguous.
func (m *Module) FindToken(ref string) (*Token, error) {
	toks, err := m.Tokens()
	if err != nil {
		return nil, err
	}
	return pickToken(toks, ref)
}

func pickToken(toks []*Token, ref string) (*Token, error) {
	for _, t := range toks {
		if ref != "" && t.info.Serial == ref {
			return t, nil
		}
	}
	var found []*Token
	for _, t := range toks {
		if t.info.Initialized() && t.info.Label == ref {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("finding token %q: %w", ref, ErrTokenNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("finding token %q: %d tokens have this label, name one by serial: %w", ref, len(found), ErrAmbiguous)
}

// Location says which of a card's tokens a job means: the default one or
// the signature one (a card whose middleware shows a second slot for the
// qualified-signature key and its SignPIN).
type Location int

const (
	LocationDefault Location = iota
	LocationSignature
)

func (l Location) String() string {
	if l == LocationSignature {
		return "Signature"
	}
	return "Default"
}

// ReaderMapping is one configured mapping from a PC/SC reader to a token,
// for modules whose slot descriptions do not name the reader.
type ReaderMapping struct {
	Reader   string
	Location Location
	Token    string // label or serial
}

// TokenForReader chooses the token for the card in a PC/SC reader:
//
//  1. the tokens in slots whose description contains the reader name (in
//     slot order; for LocationSignature the one whose label mentions "sig",
//     else the second of them);
//  2. else the token a mapping names for this reader and location;
//  3. else, for LocationDefault, the only token present, or the only
//     initialised one (SoftHSM2 always shows one empty extra slot).
func (m *Module) TokenForReader(reader string, loc Location, mappings []ReaderMapping) (*Token, error) {
	slots, err := m.Slots()
	if err != nil {
		return nil, err
	}
	s, err := ChooseSlot(slots, reader, loc, mappings)
	if err != nil {
		return nil, err
	}
	return makeToken(m, s.ID, s.Token), nil
}

// ChooseSlot is TokenForReader's rule over a slot list, without I/O.
func ChooseSlot(slots []Slot, reader string, loc Location, mappings []ReaderMapping) (Slot, error) {
	var all, named []*Token
	for _, s := range slots {
		if !s.TokenPresent {
			continue
		}
		t := makeToken(nil, s.ID, s.Token)
		all = append(all, t)
		if reader != "" && strings.Contains(s.Description, reader) {
			named = append(named, t)
		}
	}
	slot := func(t *Token) Slot {
		for _, s := range slots {
			if s.ID == t.slot {
				return s
			}
		}
		return Slot{}
	}
	if len(named) > 0 {
		if loc == LocationDefault {
			return slot(named[0]), nil
		}
		for _, t := range named {
			if strings.Contains(strings.ToLower(t.info.Label), "sig") {
				return slot(t), nil
			}
		}
		if len(named) > 1 {
			return slot(named[1]), nil
		}
		return Slot{}, fmt.Errorf("choosing the signature token for reader %q: the reader's card shows one token only: %w", reader, ErrTokenNotFound)
	}
	for _, mp := range mappings {
		if mp.Reader == reader && mp.Location == loc {
			t, err := pickToken(all, mp.Token)
			if err != nil {
				return Slot{}, fmt.Errorf("choosing the token for reader %q by its mapping: %w", reader, err)
			}
			return slot(t), nil
		}
	}
	if loc == LocationDefault {
		if len(all) == 1 {
			return slot(all[0]), nil
		}
		var inited []*Token
		for _, t := range all {
			if t.info.Initialized() {
				inited = append(inited, t)
			}
		}
		if len(inited) == 1 {
			return slot(inited[0]), nil
		}
		if len(all) > 1 {
			return Slot{}, fmt.Errorf("choosing the token for reader %q: no slot names the reader, no mapping, and %d tokens are present: %w", reader, len(all), ErrAmbiguous)
		}
	}
	return Slot{}, fmt.Errorf("choosing the %s token for reader %q: %w", loc, reader, ErrTokenNotFound)
}
