// Package api holds cardwright's wire contract: message types, the stable
// error codes, and a Go client. It is stdlib-only so that tools and tests can
// speak the protocol without pulling in the agent.
package api

// Code is a stable machine-readable error code. Codes are part of the wire
// contract: they are never renamed or reused; new ones are only added.
// docs/protocol.md lists them with their meaning.
type Code string

// Protocol and security errors (the request never reached a card).
const (
	CodeBadRequest         Code = "bad_request"         // malformed or unknown message
	CodeUnsupportedVersion Code = "unsupported_version" // no common protocol version
	CodeMessageTooLarge    Code = "message_too_large"   // frame over the size limit
	CodeRateLimited        Code = "rate_limited"        // too many messages per second
	CodeTooManyJobs        Code = "too_many_jobs"       // per-connection in-flight job limit
	CodeOriginNotAllowed   Code = "origin_not_allowed"  // Origin not on the allow-list
	CodeNotPaired          Code = "not_paired"          // origin not approved locally
	CodeUnknownJob         Code = "unknown_job"         // cancel/ack/answer for no such job
	CodeBusy               Code = "busy"                // the reader/card already runs a job
	CodeShuttingDown       Code = "shutting_down"       // the agent is stopping
	CodeInternal           Code = "internal"            // a bug: report it
	// The station's audit log cannot record jobs (a failed write): no new
	// job runs until an administrator fixes it (spec/station.md "Audit").
	CodeAuditUnavailable Code = "audit_unavailable"
)

// Job validation errors (found before any card I/O).
const (
	CodeInvalidDescription  Code = "invalid_description"  // .dsc/.dsz does not parse or check
	CodeInvalidProfile      Code = "invalid_profile"      // .cpf does not parse, check or compile
	CodeInvalidField        Code = "invalid_field"        // a field value is malformed (e.g. not base64)
	CodeMissingFile         Code = "missing_file"         // a referenced .cpf/.apdu is not in the job
	CodeSecretOutput        Code = "secret_output"        // a secret would go to a plain field
	CodeModuleNotAllowed    Code = "module_not_allowed"   // PKCS#11 module not on the allow-list
	CodePlatformUnsupported Code = "platform_unsupported" // no library key for this platform
	CodeConfig              Code = "config"               // the agent's configuration lacks what the job needs
)

// Execution errors.
const (
	CodeNoCard            Code = "no_card"            // no card present
	CodeCardAmbiguous     Code = "card_ambiguous"     // several cards and no way to choose
	CodeCardNotFound      Code = "card_not_found"     // no card matches the selection criteria
	CodeCardRemoved       Code = "card_removed"       // the card was removed mid-job
	CodeCardChanged       Code = "card_changed"       // another card after a prompt
	CodeReaderUnavailable Code = "reader_unavailable" // reader gone or PC/SC service down
	CodeCardError         Code = "card_error"         // the card refused a command (status word)
	CodeModuleError       Code = "module_error"       // the PKCS#11 module failed to load or init
	CodeTokenError        Code = "token_error"        // a PKCS#11 operation failed
	CodeTokenNotFound     Code = "token_not_found"    // no token for the reader
	CodePinIncorrect      Code = "pin_incorrect"      // wrong PIN/PUK (retries in the message)
	CodePinBlocked        Code = "pin_blocked"        // PIN/PUK blocked
	CodeNotSupported      Code = "not_supported"      // the card/token cannot do what was asked
	CodePromptRefused     Code = "prompt_refused"     // the local user cancelled a dialog
	CodePromptUnavailable Code = "prompt_unavailable" // a dialog is needed but none can be shown (headless)
	CodeIssuerError       Code = "issuer_error"       // the portal did not issue the certificate
	CodePinKeyNotFound    Code = "pin_key_not_found"  // no decryption key matches the PIN blob
	CodeNoEncryptedPins   Code = "no_encrypted_pins"  // the card holds no encrypted-PIN blob
	CodeApduScript        Code = "apdu_script"        // an APDU script line got an unexpected status
	CodeCancelled         Code = "cancelled"          // cancelled by the portal or the user
	CodeInterrupted       Code = "interrupted"        // the agent stopped mid-job (crash or kill)
	CodeTimeout           Code = "timeout"            // a step worked longer than its timeout (learned per card model)
)
