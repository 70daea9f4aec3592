package dsc

import (
	"errors"
	"io/fs"
	"strconv"

	"github.com/cardwright/cardwright/internal/errlist"
	"github.com/cardwright/cardwright/secret"
)

// StepKind is one kind of step of a job, in the order of docs/dsc.md
// ("Order of a job"); docs/dsc.md lists what each does. Each has its type
// of Step (step.go). Validation (step 1 of that order) is NewPlan itself:
// a Plan exists only for a valid job.
type StepKind uint8

const (
	StepSelectCard        StepKind = iota + 1 // SelectCardStep
	StepRetrieveTokens                        // RetrieveTokensStep
	StepDeleteProfile                         // DeleteProfileStep
	StepInitProfile                           // InitProfileStep
	StepInitToken                             // InitTokenStep
	StepWriteSerial                           // WriteSerialStep
	StepSetPIN                                // SetPINStep
	StepChangePUK                             // ChangePUKStep
	StepApplication                           // ApplicationStep
	StepApduScript                            // ApduScriptStep
	StepBlockCard                             // BlockCardStep
	StepReadICCSN                             // ReadICCSNStep
	StepReadEncryptedPINs                     // ReadEncryptedPINsStep
	StepClearFields                           // ClearFieldsStep
)

var stepKindNames = [...]string{
	StepSelectCard: "select_card", StepRetrieveTokens: "retrieve_tokens",
	StepDeleteProfile: "delete_profile", StepInitProfile: "init_profile",
	StepInitToken: "init_token", StepWriteSerial: "write_serial", StepSetPIN: "set_pin",
	StepChangePUK: "change_puk", StepApplication: "application", StepApduScript: "apdu_script",
	StepBlockCard: "block_card", StepReadICCSN: "read_iccsn",
	StepReadEncryptedPINs: "read_encrypted_pins", StepClearFields: "clear_fields",
}

func (k StepKind) String() string {
	if int(k) < len(stepKindNames) && stepKindNames[k] != "" {
		return stepKindNames[k]
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText writes the kind's name (e.g. "init_profile").
func (k StepKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Login says which credential a PKCS#11 step logs in with.
type Login uint8

const (
	// LoginNone: no login (or not a PKCS#11 step).
	LoginNone Login = iota
	// LoginUser: CKU_USER with Credentials.PIN.
	LoginUser
	// LoginSO: CKU_SO with Credentials.SO() (InitialPUK, or Operator_Pin
	// when OperatorPinIsSOCredential).
	LoginSO
	// LoginSignature: CKU_USER on the signature slot with Credentials.SignPIN.
	LoginSignature
	// LoginHighest: the highest credential given — SO (PUK) over user PIN —
	// else anonymous (DeleteProfile).
	LoginHighest
)

var loginNames = [...]string{"none", "user", "so", "signature", "highest"}

func (l Login) String() string {
	if int(l) < len(loginNames) {
		return loginNames[l]
	}
	return "Login(" + strconv.Itoa(int(l)) + ")"
}

// MarshalText writes the login's name.
func (l Login) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Credential is a resolved PIN, PUK or password: either a value (from a
// field or a literal) or a local prompt. It never prints its value.
type Credential struct {
	Key   string       `json:"key"`             // description key as written (PIN, InitialPUK, …)
	Pos   Pos          `json:"pos"`             // of the key
	Field string       `json:"field,omitempty"` // field the value came from; "" for a literal or a prompt
	Value secret.Value `json:"value,omitzero"`  // empty when Prompt is set
	// Prompt, if not nil, says the runner must collect the value locally
	// (Prompter kind = Prompt.String()).
	Prompt *PINSource `json:"prompt,omitempty"`
}

// Credentials are the job's PINs, resolved. Nil means not given.
type Credentials struct {
	PIN        *Credential `json:"pin,omitempty"`         // PIN (SEC_PIN1)
	InitialPUK *Credential `json:"initial_puk,omitempty"` // InitialPUK (SEC_PUK)
	PUK        *Credential `json:"puk,omitempty"`         // PUK: the new PUK
	Operator   *Credential `json:"operator,omitempty"`    // Operator_Pin (SEC_OP)
	SignPIN    *Credential `json:"sign_pin,omitempty"`    // SignPIN/PIN2 (SEC_PIN2)
	// SOIsOperator: OperatorPinIsSOCredential — log in as SO with the
	// operator PIN instead of the PUK.
	SOIsOperator bool `json:"so_is_operator"`
}

// SO returns the credential used for a PKCS#11 SO login, or nil.
func (c *Credentials) SO() *Credential {
	if c.SOIsOperator {
		return c.Operator
	}
	return c.InitialPUK
}

// The payloads of the steps follow.

// SelectStep chooses the card.
type SelectStep struct {
	// ICCSN, if not empty, is the only card to encode
	// (UseSelectCriteriaIccsn + SelectCriteriaIccsn).
	ICCSN string `json:"iccsn,omitempty"`
	// WithATR: ICCSNs are matched (and written) as "ICCSN-ATRHEX"
	// (UseICCSNwithATR).
	WithATR bool `json:"with_atr,omitempty"`
	// UseChipSerial: use the chip's own serial even if the card carries a
	// CMSCardSerialNumber (useChipSerialAsIccsn).
	UseChipSerial bool `json:"use_chip_serial,omitempty"`
}

// RetrieveStep lists the ICCSNs of all present cards (comma-separated) into
// Field; nothing else runs.
type RetrieveStep struct {
	Field         string `json:"field"`
	WithATR       bool   `json:"with_atr,omitempty"`
	UseChipSerial bool   `json:"use_chip_serial,omitempty"`
}

// ProfileParam is one ProfileParameters entry: the profile variable (the
// field's name as declared) and its base64-decoded job value.
type ProfileParam struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// InitStep initializes the card: with a card profile (InitProfileStep) or
// with PKCS#11 C_InitToken (InitTokenStep). PINs come from
// Plan.Credentials; for a profile they are the variables SEC_PIN1 (PIN),
// SEC_PIN2 (SignPIN), SEC_PUK (InitialPUK) and SEC_OP (Operator_Pin).
type InitStep struct {
	// Profile is the ChipProfile file name; "" for C_InitToken.
	Profile string `json:"profile,omitempty"`
	// ProfileSource is the profile's text, read from Job.Files.
	ProfileSource []byte `json:"-"`
	// Params are the ProfileParameters in order.
	Params []ProfileParam `json:"params,omitempty"`
	// Label is InitialLabel ("" if absent).
	Label string `json:"label,omitempty"`
}

// ProfileVariable names the profile variables that carry PINs
// (docs/dsc.md: reserved in ProfileParameters).
var ProfileVariable = struct{ PIN1, PIN2, PUK, OP string }{"SEC_PIN1", "SEC_PIN2", "SEC_PUK", "SEC_OP"}

// SerialStep writes the CMSCardSerialNumber to the card (SO login).
type SerialStep struct {
	Serial string `json:"serial"`
	Field  string `json:"field"`
}

// PINMode says how a PIN step works.
type PINMode uint8

const (
	// PINChange: the user changes the PIN: old PIN → new PIN (C_SetPIN as
	// user). With a dialog-3 prompt the dialog collects both.
	PINChange PINMode = iota + 1
	// PINReset: log in as SO and set a new user PIN (C_InitPIN; unblocks
	// a blocked PIN — ISO 7816-4 RESET RETRY COUNTER on a plain card).
	PINReset
	// PINChangeSO: change the SO credential (PUK): old → new (C_SetPIN as SO).
	PINChangeSO
)

var pinModeNames = [...]string{"", "change", "reset", "change_so"}

func (m PINMode) String() string {
	if int(m) < len(pinModeNames) && m != 0 {
		return pinModeNames[m]
	}
	return "PINMode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText writes the mode's name.
func (m PINMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// PINStep sets, changes or unblocks a PIN (SetPINStep), or changes the PUK
// (ChangePUKStep).
type PINStep struct {
	Mode PINMode     `json:"mode"`
	New  *Credential `json:"new"`
	// Old is the current value for PINChange (nil when New.Prompt is
	// dialog 3, which asks for it) and PINChangeSO (the InitialPUK).
	Old *Credential `json:"old,omitempty"`
	// SO is the credential for PINReset.
	SO *Credential `json:"so,omitempty"`
}

// AppAction is what an application does.
type AppAction uint8

const (
	// AppGenerateKey: generate a key pair (KeyType/KeySize), build a PKCS#10
	// request, have the server issue the certificate, write it.
	AppGenerateKey AppAction = iota + 1
	// AppUseObject: find the existing key by ObjectCriteria, build a PKCS#10
	// request with it, have the server issue the certificate, write it.
	AppUseObject
	// AppWriteP12: write the PKCS#12 of the Certificate field (key,
	// certificate, chain) with the P12PASSWORD field's password.
	AppWriteP12
	// AppKeyArchival: the server generates and archives the key; the
	// PKCS#12 it returns mid-job is written (KeyArchivalRequest without a
	// PKCS#12 value in the job).
	AppKeyArchival
	// AppWriteCertificate: write the DER certificate of the Certificate field.
	AppWriteCertificate
	// AppWriteCertKeyList: write the certificates/PKCS#12s of CertKeyList.
	AppWriteCertKeyList
)

var appActionNames = [...]string{"", "generate_key", "use_object", "write_p12", "key_archival", "write_certificate", "write_cert_key_list"}

func (a AppAction) String() string {
	if int(a) < len(appActionNames) && a != 0 {
		return appActionNames[a]
	}
	return "AppAction(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText writes the action's name.
func (a AppAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// AppStep is one application, resolved.
type AppStep struct {
	ID       string    `json:"id"`
	Action   AppAction `json:"action"`
	Template string    `json:"template,omitempty"` // CertTempl
	KeyType  string    `json:"key_type,omitempty"` // "RSA" or "EC" (AppGenerateKey)
	KeySize  int       `json:"key_size,omitempty"` // bits (RSA) or curve size (EC: 256, 384, 521)
	// Criteria selects the key for AppUseObject.
	Criteria *ObjectCriteria `json:"criteria,omitempty"`
	// Certificate is the DER certificate (AppWriteCertificate).
	Certificate []byte `json:"certificate,omitempty"`
	// P12 is the DER PKCS#12 (AppWriteP12), P12Password its password.
	P12         []byte      `json:"p12,omitempty"`
	P12Password *Credential `json:"p12_password,omitempty"`
	// CertKeyList items (AppWriteCertKeyList): DER certificates, or DER
	// PKCS#12s when CertKeyListMode is "p12".
	CertKeyList     [][]byte `json:"cert_key_list,omitempty"`
	CertKeyListMode string   `json:"cert_key_list_mode,omitempty"` // "certificates" or "p12"
	ReturnField     string   `json:"return_field,omitempty"`       // CertKeyListReturnField
	// CardSerial is the CardSerialNumberField's value, for the request.
	CardSerial string `json:"card_serial,omitempty"`
	// Signature: Location=Signature — work in the signature slot with SignPIN.
	Signature bool `json:"signature,omitempty"`
}

// ScriptStep sends an APDU script. Every status word goes, in order and
// comma-separated as 4 hex digits, to ResponseField (if set).
type ScriptStep struct {
	File          string          `json:"file"`
	Commands      []ScriptCommand `json:"commands"`
	ResponseField string          `json:"response_field,omitempty"`
}

// FinalizeStep reads the ICCSN into an output field.
type FinalizeStep struct {
	Field string `json:"field"`
	// CMSSerial, if not empty, is reported as the ICCSN instead of the
	// chip's serial (CMSCardSerialNumber without useChipSerialAsIccsn).
	CMSSerial string `json:"cms_serial,omitempty"`
	WithATR   bool   `json:"with_atr,omitempty"` // report "ICCSN-ATRHEX"
}

// PINReadStep reads the encrypted-PIN blob into secret output fields.
type PINReadStep struct {
	Outputs []PINReadOutput `json:"outputs"`
}

// PINReadOutput maps one PIN of the blob to an output field.
type PINReadOutput struct {
	Name  string `json:"name"`  // PIN1 … MAN
	Field string `json:"field"` // declared name; always a secret output
}

// ClearStep wipes fields; they are never returned.
type ClearStep struct {
	Fields []string `json:"fields"`
}

// Output is a field the job writes back.
type Output struct {
	Field  string `json:"field"`
	Secret bool   `json:"secret,omitempty"`
	Key    string `json:"key"` // the key that makes it an output
}

// Plan is the ordered list of steps a runner executes for one job, with
// every value resolved and validated. It is built by NewPlan before any card
// I/O.
type Plan struct {
	Description *Description `json:"-"`
	Platform    Platform     `json:"platform"`
	// Module is the PKCS#11 library key chosen for Platform; nil when no
	// step needs PKCS#11. Module.Text is the library path (the agent's
	// allow-list decides whether it may be loaded).
	Module *Value `json:"module,omitempty"`
	// PKCS11 reports whether any step uses a PKCS#11 token (then a nil
	// Module means: the agent's configured module).
	PKCS11      bool        `json:"pkcs11,omitempty"`
	Credentials Credentials `json:"credentials"`
	Steps       []Step      `json:"steps"`
	// Outputs are the fields the job returns (ClearFields excluded).
	Outputs []Output `json:"outputs,omitempty"`
	// Clear are the fields never returned (ClearFields), declared names.
	Clear []string `json:"clear,omitempty"`
	// SkipEject: [Encoding] SkipEject, for the station hook.
	SkipEject bool `json:"skip_eject,omitempty"`
}

// Job is what NewPlan needs besides the description.
type Job struct {
	// Fields are the job's field values by name (matched
	// case-insensitively); a declared field without a value takes its
	// default from [Fields].
	Fields map[string]string
	// Secret marks the fields the job declares secret/encrypted; only
	// those may receive decrypted PINs. (Fields that feed PIN keys, PKCS#12
	// passwords and ClearFields are treated as sensitive anyway: an APDU
	// command carrying one is marked Secret.)
	Secret map[string]bool
	// Platform chooses the PKCS#11 library key.
	Platform Platform
	// Files holds the referenced card profiles and APDU scripts (a Bundle,
	// or a directory). Nil: every referenced file is missing.
	Files fs.FS
	// ProfileAssigns, if set, returns the variables a card profile assigns
	// itself (the cpf package knows); ProfileParameters may not set those.
	ProfileAssigns func(profile string, src []byte) ([]string, error)

	placeholders bool // PlaceholderJob
}

// Sentinel kinds of plan errors; PlanError unwraps to one of them. They map
// to the wire codes invalid_description, invalid_field, missing_file,
// secret_output and platform_unsupported.
var (
	ErrInvalidDescription = errors.New("invalid description")
	ErrInvalidField       = errors.New("invalid field value")
	ErrMissingFile        = errors.New("missing file")
	ErrSecretOutput       = errors.New("secret output to a plain field")
	ErrPlatform           = errors.New("no PKCS#11 library for this platform")
)

// PlanError is one reason a job cannot run: a kind (one of the Err…
// sentinels), the field and key concerned, and the key's position.
type PlanError struct {
	Kind  error  `json:"-"`
	Field string `json:"field,omitempty"`
	Key   string `json:"key,omitempty"`
	Pos   Pos    `json:"pos"`
	Msg   string `json:"message"`
}

func (e *PlanError) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap returns the kind sentinel.
func (e *PlanError) Unwrap() error { return e.Kind }

// PlanErrors is every reason a job cannot run, sorted by position.
type PlanErrors []*PlanError

func (es PlanErrors) Error() string {
	return errlist.Join(es, (*PlanError).Error)
}

// Unwrap lets errors.Is find any kind and errors.As any *PlanError.
func (es PlanErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
