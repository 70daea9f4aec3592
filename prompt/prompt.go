// Package prompt is what the agent asks the local user for: a PIN request
// that says who asks and why, from the agent's own validated data
// (spec/gui.md, properties 2 and 3), the answer, and the two ways asking can
// fail. The runner, the signing service, the terminal and the desktop app
// all speak it; it is the lowest layer that knows "a dialog".
package prompt

import (
	"context"
	"errors"

	"github.com/cardwright/cardwright/secret"
)

// ErrRefused is returned when the user cancels the dialog (or it times
// out): the job ends prompt_refused.
var ErrRefused = errors.New("PIN entry cancelled")

// ErrUnavailable is returned by a Prompter that cannot show a dialog
// (headless agent, no display, the desktop app not running): the job ends
// prompt_unavailable.
var ErrUnavailable = errors.New("no PIN dialog can be shown")

// Kind is the dialog asked for: the description's PIN source, or what a
// WebSocket request needs.
type Kind string

// Dialog kinds. The first four are the dsc sources of the same name.
const (
	OneField    Kind = "FROM_USER_DIALOG_1_FIELD" // the PIN
	TwoFields   Kind = "FROM_USER_DIALOG_2_FIELD" // a new PIN, twice
	ThreeFields Kind = "FROM_USER_DIALOG_3_FIELD" // the current PIN, then a new one twice
	Pad         Kind = "FROM_PROTECTED_AUTHENTICATION_PATH"
	Sign        Kind = "SIGN_PIN"         // a PIN to make a signature
	SignIn      Kind = "AUTHENTICATE_PIN" // a PIN to sign in to a site
	// Passphrase is a delivered PKCS#12's passphrase (OpSoftToken). The
	// dialog may also offer Request.Stores to choose where it goes
	// (Answer.Store).
	Passphrase Kind = "P12_PASSPHRASE"
)

// Fields is how many entry fields the dialog of k shows (0 for the pad).
func (k Kind) Fields() int {
	switch k {
	case TwoFields:
		return 2
	case ThreeFields:
		return 3
	case Pad, "FROM_USER_DIALOG_AUTO":
		return 0
	}
	return 1
}

// Operation says what the PIN is for, as the dialog names it.
type Operation string

// Operations.
const (
	OpLogin      Operation = "login"      // log in to the card or token to encode it
	OpInitialize Operation = "initialize" // initialize a card or token
	OpSetPIN     Operation = "set_pin"    // set a new PIN
	OpChangePIN  Operation = "change_pin" // change a PIN (current and new)
	OpUnblock    Operation = "unblock"    // unblock a PIN with the PUK or SO PIN
	OpSign       Operation = "sign"       // make a signature
	OpSignIn     Operation = "sign_in"    // sign in to a site
	OpSoftToken  Operation = "soft_token" // store a soft token a page delivered
	OpOther      Operation = ""           // anything else
)

// Request is one dialog. Every field comes from the agent's own data: the
// origin as the agent checked it, never text a page supplied.
type Request struct {
	Kind      Kind
	Operation Operation
	Label     string // what is asked, e.g. "user PIN", "SO PIN", "current PIN"
	Origin    string // the page's checked origin; "" when the local user started the job
	Reader    string // the reader (or, for sign and sign_in, "")
	Card      string // ICCSN of the card or label of the token; "" unknown
	Subject   string // the certificate's subject for sign and sign_in
	TriesLeft int    // tries before the PIN blocks; 0 unknown
	MinLen    int    // length rules (bytes) from the card profile or token; 0 none
	MaxLen    int
	// Stores, for Passphrase: the stores the user may choose from (ids
	// with what the dialog shows), the first preselected; empty: the page
	// chose.
	Stores []Choice
	// Retry says the previous answer was wrong (the dialog says so).
	Retry bool
}

// Choice is one option of a dialog's list: an id and what it shows.
type Choice struct {
	ID, Text string
}

// Answer is what the user typed. For OneField, Sign and SignIn only PIN is
// set; for TwoFields PIN is the new PIN (the dialog checked both entries
// match); for ThreeFields Current is the current PIN too. For Passphrase
// PIN is the passphrase.
type Answer struct {
	PIN     secret.Value
	Current secret.Value
	Store   string // for Passphrase with Stores: the chosen Choice.ID
}

// Wipe overwrites both values.
func (a *Answer) Wipe() {
	a.PIN.Wipe()
	a.Current.Wipe()
}

// Prompter asks the local user. A cancelled dialog returns an error
// wrapping ErrRefused, a prompter that cannot show one wraps
// ErrUnavailable; when ctx ends the dialog closes and ctx's error is
// returned.
type Prompter interface {
	Ask(ctx context.Context, r Request) (Answer, error)
}

// PadShower is implemented by Prompters that show a window while a PIN pad
// waits for the user (Kind Pad: no fields, a countdown). The window stays
// until done is called; cancel, if the user cancels in the window, ends the
// job (the pad itself returns when its reader gives control back).
type PadShower interface {
	ShowPad(r Request, cancel func()) (done func())
}

// Refuse is the headless Prompter: every request fails with ErrUnavailable.
type Refuse struct{}

// Ask implements Prompter.
func (Refuse) Ask(context.Context, Request) (Answer, error) {
	return Answer{}, ErrUnavailable
}
