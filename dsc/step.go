package dsc

import (
	"bytes"
	"encoding/json"
)

// Step is one unit of work of a plan: one of the *…Step types below, each
// a kind of step with its header and its payload, so a step without its
// payload cannot exist. The set is closed (the unexported method); a
// runner switches on the type.
type Step interface {
	// Kind says which step this is; it is what the JSON form names.
	Kind() StepKind
	// Header returns what every step has: its name, the description key
	// that caused it and the login it needs.
	Header() StepHeader
	step()
}

// StepHeader is the common part of every step. Key and Pos name the
// description key that caused it (for error reports: step, key,
// file:line).
type StepHeader struct {
	Name  string // e.g. "SelectCard", "InitToken", "Application_A"
	Key   string // causing key as written; "" for implicit steps
	Pos   Pos
	Login Login
}

// Header returns h.
func (h StepHeader) Header() StepHeader { return h }

// SelectCardStep chooses the reader and card.
type SelectCardStep struct {
	StepHeader
	Select SelectStep
}

// RetrieveTokensStep lists the ICCSNs of all present cards into a field
// and ends the job.
type RetrieveTokensStep struct {
	StepHeader
	Retrieve RetrieveStep
}

// DeleteProfileStep erases the card back to uninitialized (PKCS#11 card
// eraser), logged in with Login (LoginHighest).
type DeleteProfileStep struct {
	StepHeader
}

// InitProfileStep initializes the card by running a .cpf card profile over
// PC/SC (Init.Profile is set).
type InitProfileStep struct {
	StepHeader
	Init InitStep
}

// InitTokenStep initializes the token with PKCS#11 C_InitToken, then
// C_InitPIN with the user PIN (Init.Profile is empty).
type InitTokenStep struct {
	StepHeader
	Init InitStep
}

// WriteSerialStep writes CMSCardSerialNumber to the card.
type WriteSerialStep struct {
	StepHeader
	Serial SerialStep
}

// SetPINStep sets, changes or unblocks the user PIN.
type SetPINStep struct {
	StepHeader
	PIN PINStep
}

// ChangePUKStep changes the PUK from InitialPUK to PUK.
type ChangePUKStep struct {
	StepHeader
	PIN PINStep
}

// ApplicationStep runs one [Application_X].
type ApplicationStep struct {
	StepHeader
	App AppStep
}

// ApduScriptStep sends the APDU script of ApduFile.
type ApduScriptStep struct {
	StepHeader
	Script ScriptStep
}

// BlockCardStep blocks the user PIN after personalization.
type BlockCardStep struct {
	StepHeader
}

// ReadICCSNStep reads the card's ICCSN (and ATR) into the output field.
type ReadICCSNStep struct {
	StepHeader
	Finalize FinalizeStep
}

// ReadEncryptedPINsStep reads and decrypts the card's encrypted-PIN blob
// into secret output fields.
type ReadEncryptedPINsStep struct {
	StepHeader
	PINs PINReadStep
}

// ClearFieldsStep wipes the ClearFields values; they never leave the
// agent.
type ClearFieldsStep struct {
	StepHeader
	Clear ClearStep
}

func (*SelectCardStep) Kind() StepKind        { return StepSelectCard }
func (*RetrieveTokensStep) Kind() StepKind    { return StepRetrieveTokens }
func (*DeleteProfileStep) Kind() StepKind     { return StepDeleteProfile }
func (*InitProfileStep) Kind() StepKind       { return StepInitProfile }
func (*InitTokenStep) Kind() StepKind         { return StepInitToken }
func (*WriteSerialStep) Kind() StepKind       { return StepWriteSerial }
func (*SetPINStep) Kind() StepKind            { return StepSetPIN }
func (*ChangePUKStep) Kind() StepKind         { return StepChangePUK }
func (*ApplicationStep) Kind() StepKind       { return StepApplication }
func (*ApduScriptStep) Kind() StepKind        { return StepApduScript }
func (*BlockCardStep) Kind() StepKind         { return StepBlockCard }
func (*ReadICCSNStep) Kind() StepKind         { return StepReadICCSN }
func (*ReadEncryptedPINsStep) Kind() StepKind { return StepReadEncryptedPINs }
func (*ClearFieldsStep) Kind() StepKind       { return StepClearFields }

func (*SelectCardStep) step()        {}
func (*RetrieveTokensStep) step()    {}
func (*DeleteProfileStep) step()     {}
func (*InitProfileStep) step()       {}
func (*InitTokenStep) step()         {}
func (*WriteSerialStep) step()       {}
func (*SetPINStep) step()            {}
func (*ChangePUKStep) step()         {}
func (*ApplicationStep) step()       {}
func (*ApduScriptStep) step()        {}
func (*BlockCardStep) step()         {}
func (*ReadICCSNStep) step()         {}
func (*ReadEncryptedPINsStep) step() {}
func (*ClearFieldsStep) step()       {}

// stepJSON is the JSON form of every step (docs/dsc.md): its kind, its
// header, and its payload under the payload's key.
type stepJSON struct {
	Kind  StepKind `json:"kind"`
	Name  string   `json:"name"`
	Key   string   `json:"key,omitempty"`
	Pos   Pos      `json:"pos,omitzero"`
	Login Login    `json:"login,omitempty"`

	Select   *SelectStep   `json:"select,omitempty"`
	Retrieve *RetrieveStep `json:"retrieve,omitempty"`
	Init     *InitStep     `json:"init,omitempty"`
	Serial   *SerialStep   `json:"serial,omitempty"`
	PIN      *PINStep      `json:"pin,omitempty"`
	App      *AppStep      `json:"app,omitempty"`
	Script   *ScriptStep   `json:"script,omitempty"`
	Finalize *FinalizeStep `json:"finalize,omitempty"`
	PINs     *PINReadStep  `json:"pins,omitempty"`
	Clear    *ClearStep    `json:"clear,omitempty"`
}

// marshalStep writes s in its JSON form. HTML escaping is left to the
// encoder that called MarshalJSON, which applies its own setting to what
// a Marshaler returns.
func marshalStep(s Step) ([]byte, error) {
	h := s.Header()
	j := stepJSON{Kind: s.Kind(), Name: h.Name, Key: h.Key, Pos: h.Pos, Login: h.Login}
	switch s := s.(type) {
	case *SelectCardStep:
		j.Select = &s.Select
	case *RetrieveTokensStep:
		j.Retrieve = &s.Retrieve
	case *InitProfileStep:
		j.Init = &s.Init
	case *InitTokenStep:
		j.Init = &s.Init
	case *WriteSerialStep:
		j.Serial = &s.Serial
	case *SetPINStep:
		j.PIN = &s.PIN
	case *ChangePUKStep:
		j.PIN = &s.PIN
	case *ApplicationStep:
		j.App = &s.App
	case *ApduScriptStep:
		j.Script = &s.Script
	case *ReadICCSNStep:
		j.Finalize = &s.Finalize
	case *ReadEncryptedPINsStep:
		j.PINs = &s.PINs
	case *ClearFieldsStep:
		j.Clear = &s.Clear
	case *DeleteProfileStep, *BlockCardStep:
		// no payload
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalJSON writes the step in the JSON form of every step.
func (s *SelectCardStep) MarshalJSON() ([]byte, error)        { return marshalStep(s) }
func (s *RetrieveTokensStep) MarshalJSON() ([]byte, error)    { return marshalStep(s) }
func (s *DeleteProfileStep) MarshalJSON() ([]byte, error)     { return marshalStep(s) }
func (s *InitProfileStep) MarshalJSON() ([]byte, error)       { return marshalStep(s) }
func (s *InitTokenStep) MarshalJSON() ([]byte, error)         { return marshalStep(s) }
func (s *WriteSerialStep) MarshalJSON() ([]byte, error)       { return marshalStep(s) }
func (s *SetPINStep) MarshalJSON() ([]byte, error)            { return marshalStep(s) }
func (s *ChangePUKStep) MarshalJSON() ([]byte, error)         { return marshalStep(s) }
func (s *ApplicationStep) MarshalJSON() ([]byte, error)       { return marshalStep(s) }
func (s *ApduScriptStep) MarshalJSON() ([]byte, error)        { return marshalStep(s) }
func (s *BlockCardStep) MarshalJSON() ([]byte, error)         { return marshalStep(s) }
func (s *ReadICCSNStep) MarshalJSON() ([]byte, error)         { return marshalStep(s) }
func (s *ReadEncryptedPINsStep) MarshalJSON() ([]byte, error) { return marshalStep(s) }
func (s *ClearFieldsStep) MarshalJSON() ([]byte, error)       { return marshalStep(s) }
