package api

import "encoding/json"

// Protocol versions. A client lists the versions it speaks in hello; the
// agent answers with the highest one both know (docs/protocol.md, "hello").
const (
	ProtocolVersion    = 1 // the newest version this package speaks
	MinProtocolVersion = 1 // the oldest version the agent still accepts
)

// Message types sent by a client (portal page, GUI, Go client) to the agent.
const (
	TypeHello        = "hello"
	TypePair         = "pair"
	TypeReaders      = "readers"
	TypeJob          = "job"
	TypeCancel       = "cancel"
	TypeAck          = "ack"
	TypeAnswer       = "answer"
	TypeCertificates = "certificates"
	TypeSign         = "sign"
	TypeAuthenticate = "authenticate"
	TypeSoftToken    = "softtoken"
)

// Message types sent by the agent to a client.
const (
	TypeWelcome         = "welcome"          // reply to hello
	TypePairing         = "pairing"          // reply to pair: the code to show
	TypePaired          = "paired"           // the local user approved the origin
	TypeReaderList      = "reader_list"      // reply to readers
	TypeReaderEvent     = "reader_event"     // a reader appeared or went away (subscription)
	TypeCardEvent       = "card_event"       // a card was inserted or removed (subscription)
	TypeAccepted        = "accepted"         // reply to job: the job is running
	TypeOK              = "ok"               // reply to cancel, ack, answer
	TypeError           = "error"            // a request failed before it ran
	TypeProgress        = "progress"         // job event: step n of total
	TypePrompt          = "prompt"           // job event: the agent asks the local user
	TypeRequest         = "request"          // job event: the portal must issue a certificate
	TypeResult          = "result"           // job event: the job ended
	TypeCertificateList = "certificate_list" // reply to certificates
	TypeSignature       = "signature"        // reply to sign
	TypeAuthentication  = "authentication"   // reply to authenticate
	TypeSoftTokenStored = "softtoken_stored" // reply to softtoken
)

// Envelope is the part every message has: its type and the client-chosen id
// of the request it belongs to. Decode a frame into Envelope first, then into
// the type it names.
type Envelope struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// Hello opens a conversation. Session is the token the agent returned in an
// earlier welcome; presenting it again re-attaches to that session so that
// results not yet acknowledged are delivered again.
type Hello struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Versions []int  `json:"versions"`
	Session  string `json:"session,omitempty"`
	Client   string `json:"client,omitempty"` // free text, e.g. "portal/4.2"
}

// Welcome answers hello.
type Welcome struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int    `json:"version"`
	Agent   string `json:"agent"`
	Session string `json:"session"`
	Paired  bool   `json:"paired"`
	Limits  Limits `json:"limits"`
	Pending int    `json:"pending"` // results not yet acknowledged, sent right after
}

// Limits tells a client what the agent accepts.
type Limits struct {
	MaxMessageBytes int `json:"max_message_bytes"`
	MaxJobs         int `json:"max_jobs"`            // jobs in flight per session
	MaxRate         int `json:"max_rate_per_second"` // sustained messages per second
}

// Pair asks the local user to approve this connection's origin.
type Pair struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Pairing is the agent's first answer to pair: the code the page shows next
// to the tray's dialog so the user can see both are the same request.
type Pairing struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Code   string `json:"code"`
	Origin string `json:"origin"`
}

// Paired reports that the local user approved the origin.
type Paired struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Origin string `json:"origin"`
}

// Readers asks for the reader list; Subscribe starts (true) or stops (false)
// reader_event and card_event messages carrying this request's id.
type Readers struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Subscribe *bool  `json:"subscribe,omitempty"`
}

// Reader is one PC/SC reader as the agent sees it.
type Reader struct {
	Name    string `json:"name"`
	Card    bool   `json:"card"`           // a card is present
	ATR     string `json:"atr,omitempty"`  // hex, upper case, when a card is present
	Busy    bool   `json:"busy,omitempty"` // a job holds the card
	PinPad  bool   `json:"pinpad,omitempty"`
	Skipped bool   `json:"skipped,omitempty"` // on the configured skip list
}

// ReaderList answers readers.
type ReaderList struct {
	Type    string   `json:"type"`
	ID      string   `json:"id"`
	Readers []Reader `json:"readers"`
}

// Reader and card event kinds.
const (
	EventReaderAdded   = "added"
	EventReaderRemoved = "removed"
	EventCardInserted  = "inserted"
	EventCardRemoved   = "removed"
)

// ReaderEvent is sent to subscribers when a reader appears or goes away.
type ReaderEvent struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Event  string `json:"event"`
	Reader string `json:"reader"`
}

// CardEvent is sent to subscribers when a card is inserted or removed.
type CardEvent struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Event  string `json:"event"`
	Reader string `json:"reader"`
	ATR    string `json:"atr,omitempty"`
}

// Job submits a card job. Exactly one of Description (the .dsc text) and
// DSZ (base64 of a .dsz zip) is set. Files are the profiles and scripts the
// description references, base64. Fields are the values of the
// description's [Fields]; Secret lists the output fields the portal accepts
// secrets in (decrypted PINs go only there).
type Job struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	DSZ         string            `json:"dsz,omitempty"`
	Files       map[string]string `json:"files,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
	Secret      []string          `json:"secret,omitempty"`
	Reader      string            `json:"reader,omitempty"`
}

// Accepted answers job: the job is journaled and running.
type Accepted struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Cancel asks the agent to stop the job whose request id is Job.
type Cancel struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Job  string `json:"job"`
}

// Ack tells the agent the portal has stored the result of the job Job; the
// agent then forgets it.
type Ack struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Job  string `json:"job"`
}

// OK answers cancel, ack and answer.
type OK struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Error answers a request that failed before anything ran, or reports a
// protocol problem (ID empty when the frame had none).
type Error struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Progress is a job event: the job is at step N of Total.
type Progress struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Step  string `json:"step"`
	N     int    `json:"n"`
	Total int    `json:"total"`
	// ETAMS is the expected work left in milliseconds, this step included,
	// learned per card model (spec/station.md "Slow cards"); absent until
	// the agent knows every remaining kind of step on this card model.
	ETAMS int64 `json:"eta_ms,omitempty"`
}

// Prompt states.
const (
	PromptWaiting = "waiting"
	PromptDone    = "done"
)

// Prompt is a job event: the agent is asking the local user for something
// (a PIN, a card). The page learns only that it waits, never the answer.
type Prompt struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Kind   string `json:"kind"` // "pin", "new_pin", "pinpad", "insert_card"
	State  string `json:"state"`
	Reader string `json:"reader,omitempty"`
}

// Request is a job event: a key was made on the card and the portal must
// have a certificate issued for it. The portal replies with answer.
type Request struct {
	Type        string `json:"type"`
	ID          string `json:"id"`      // the job's request id
	Request     string `json:"request"` // unique within the job
	Application string `json:"application,omitempty"`
	Template    string `json:"template,omitempty"`
	CSR         string `json:"csr,omitempty"` // base64 DER PKCS#10
	KeyArchival bool   `json:"key_archival,omitempty"`
}

// Answer replies to a request: the issued certificate (base64 DER) with its
// chain, or a PKCS#12 (base64) and its password, or an error text.
type Answer struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Job         string   `json:"job"`
	Request     string   `json:"request"`
	Certificate string   `json:"certificate,omitempty"`
	Chain       []string `json:"chain,omitempty"`
	PKCS12      string   `json:"pkcs12,omitempty"`
	Password    string   `json:"password,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Result is the last event of a job. OK with the output fields, or Error.
// Secrets holds only outputs the job listed in Secret.
type Result struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	OK          bool              `json:"ok"`
	Fields      map[string]string `json:"fields,omitempty"`
	Secrets     map[string]string `json:"secrets,omitempty"`
	Error       *JobError         `json:"error,omitempty"`
	Started     string            `json:"started,omitempty"`  // RFC 3339
	Finished    string            `json:"finished,omitempty"` // RFC 3339
	Redelivered bool              `json:"redelivered,omitempty"`
	// SecretsLost names secret outputs of a redelivered result that the
	// agent can no longer give: they are never stored in clear, and the
	// agent process that ran the job has ended. Read them from the card
	// again.
	SecretsLost []string `json:"secrets_lost,omitempty"`
	// Steps is how long each step took, in order ("select" first, "finish"
	// last; a failed job ends with the step that failed): spec/station.md
	// "Per-step timing".
	Steps []StepTime `json:"steps,omitempty"`
}

// StepTime is one step of a result's timing. Waited is the part of MS
// spent waiting for a person (PIN dialog, PIN pad) or the portal
// (certificate request).
type StepTime struct {
	Step     string  `json:"step"`
	Kind     string  `json:"kind"`
	MS       float64 `json:"ms"`
	WaitedMS float64 `json:"waited_ms,omitempty"`
	OK       bool    `json:"ok"`
}

// JobError describes why a job failed: a stable code, a message for people,
// and where it applies the step and the description position.
type JobError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Step    string `json:"step,omitempty"`
	Key     string `json:"key,omitempty"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

func (e *JobError) Error() string { return string(e.Code) + ": " + e.Message }

// Certificates asks for the certificates on present tokens matching Filter
// (spec certfilter.md). Served by the certificate service when configured.
type Certificates struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Filter json.RawMessage `json:"filter,omitempty"`
}

// Certificate is one certificate with its key, as certificates lists it.
type Certificate struct {
	Token       string `json:"token"`
	KeyID       string `json:"key_id"`
	Certificate string `json:"certificate"` // base64 DER
}

// CertificateList answers certificates.
type CertificateList struct {
	Type         string        `json:"type"`
	ID           string        `json:"id"`
	Certificates []Certificate `json:"certificates"`
}

// Sign asks for a signature over Data (base64) with the key matching Filter.
type Sign struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Filter    json.RawMessage `json:"filter,omitempty"`
	Data      string          `json:"data"`
	Algorithm string          `json:"algorithm,omitempty"`
}

// Signature answers sign.
type Signature struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Signature   string `json:"signature"`   // base64
	Certificate string `json:"certificate"` // base64 DER of the signer
}

// Authenticate asks the agent to sign a server challenge for a login.
type Authenticate struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Filter    json.RawMessage `json:"filter,omitempty"`
	Challenge string          `json:"challenge"` // base64
}

// Authentication answers authenticate.
type Authentication struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// Format, Algorithm, Certificate and Signature are the members of the
	// authentication token (docs/signing.md): the portal verifies exactly
	// these four, with the origin it served the page from and its nonce.
	Format      string `json:"format"`
	Algorithm   string `json:"algorithm"`
	Signature   string `json:"signature"`
	Certificate string `json:"certificate"`
}

// Soft-token stores (SoftToken.Store, SoftTokenStored.Store).
const (
	StoreAsk    = "ask"    // the local user chooses in the passphrase dialog
	StoreAgent  = "agent"  // the agent's own encrypted soft-token store
	StoreNSS    = "nss"    // the user's NSS database (Chromium's; Firefox profiles with Token)
	StorePKCS11 = "pkcs11" // a token of a configured PKCS#11 module (Token: its label or serial)
)

// SoftToken delivers a PKCS#12 software token (token profile type
// FILEP12SW) to the local user. Its passphrase is never in the message:
// the user types it into the agent's dialog. While the dialog is open the
// page gets prompt events (kind "passphrase") with this request's id.
type SoftToken struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	PKCS12      string `json:"pkcs12"`                 // base64 DER (RFC 7292)
	Label       string `json:"label,omitempty"`        // "": the certificate's subject CN
	ProfileType string `json:"profile_type,omitempty"` // "": FILEP12SW
	Store       string `json:"store,omitempty"`        // StoreAsk (default), StoreAgent, StoreNSS, StorePKCS11
	Token       string `json:"token,omitempty"`        // for nss: a Firefox profile folder name; for pkcs11: the token's label or serial
}

// SoftTokenStored answers softtoken: where the key and certificate went.
// It never holds the key or the passphrase.
type SoftTokenStored struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Store       string `json:"store"`
	Token       string `json:"token"` // the agent store's token id, the NSS database folder, or the PKCS#11 token label
	Label       string `json:"label"`
	ProfileType string `json:"profile_type"`
	KeyID       string `json:"key_id"`      // upper-case hex
	Certificate string `json:"certificate"` // base64 DER
}
