package runner

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/issuer"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/secret"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Profiles compiles and runs card profiles (.cpf) over PC/SC. CPF (package
// cpf) is the real one.
type Profiles interface {
	// Compile parses, checks and compiles a profile. A job compiles each of
	// its profiles once: the plan asks it which variables it assigns, the
	// steps prepare it.
	Compile(name string, src []byte) (Profile, error)
	// Erase returns the card to its virgin state (DeleteProfile over PC/SC),
	// logging in with the PUK, else the PIN, else anonymously. A card that
	// holds no profile is already erased. Its errors say "erasing the
	// card".
	Erase(ctx context.Context, card iso7816.Card, pin, puk secret.Value) error
}

// Profile is a compiled card profile.
type Profile interface {
	// Assigned are the variables the profile assigns itself.
	Assigned() []string
	// PINRules are the length rules of the credentials the profile
	// creates from the description's PINs (CreatePin minlen).
	PINRules() []PINRule
	// Prepare fills the ProfileParameters and the PIN variables the
	// description gives (SEC_PIN1, SEC_PIN2, SEC_PUK, SEC_OP) and returns
	// the card operations, without card I/O: every error that can be found
	// without a card is found here. With standIn the values of pins are
	// ignored and stand-ins used (validation before the PINs are known);
	// such a result refuses to run.
	Prepare(params []dsc.ProfileParam, pins map[string]secret.Value, standIn bool) (Prepared, error)
}

// Prepared is a profile filled with a job's values.
type Prepared interface {
	// Run executes it on the card and says what it did, also when it
	// stops part way (what it sent until then).
	Run(ctx context.Context, card iso7816.Card) (ProfileRun, error)
}

// ProfileRun is what a card profile's run did.
type ProfileRun struct {
	// PersInfo is the personalization content the profile wrote (the file
	// that holds the "Encrypted PINs" data object), nil if none.
	PersInfo []byte
	// Transcript has a line per command the profile sent (cpf.Entry.String:
	// position, purpose, APDU, response), secret data fields replaced by
	// "<N secret bytes>": it holds no PIN.
	Transcript []string
	// APDUs is the number of command APDUs transmitted (GET RESPONSE and
	// chained parts included).
	APDUs int
}

// PINRule is a length rule for the value of a PIN variable.
type PINRule struct {
	Variable string // the profile variable (SEC_PIN1, …) or "" for a token rule
	Min, Max int    // 0: no limit
	By       string // who sets the rule, for messages: "credential PIN1 of demo.cpf:12"
}

// Deps are what Build needs besides the plan.
type Deps struct {
	Tokens   Tokens        // PKCS#11; nil: jobs that need it fail validation with config
	Issuer   issuer.Issuer // certificate requests; nil: key generation fails validation with config
	Profiles Profiles      // card profiles; nil: ChipProfile fails validation with config
	PINKeys  []pinblob.Key // keys for encrypted PINs
	Skip     func(reader string) bool
	Headless bool // no local dialogs: a job needing one fails validation

	// compiled are the profiles Runner.Plan compiled for this job, by name,
	// so that Build does not compile them again.
	compiled map[string]compiledProfile
}

type compiledProfile struct {
	src []byte
	p   Profile
	err error
}

// Job is the state of one built job, shared by its steps.
type job struct {
	plan *dsc.Plan
	deps Deps
	file string // description file name, for errors

	module   string
	profile  Profile
	init     *dsc.InitStep  // the card profile's step
	initAt   dsc.StepHeader // and where the description asks for it
	prepared Prepared       // the profile with the job's PINs, once they are known
	tokens   map[Location]Token
	logins   map[Location]dsc.Login
	values   map[*dsc.Credential]secret.Value
	so       *secret.Value // SO credential after a PUK change
	pinFile  []byte        // what the profile wrote for "Encrypted PINs"
	profiled bool          // a card profile ran in this job
	secret   map[string]bool
	rules    map[*dsc.Credential][]PINRule // length rules a value must meet before anything is erased

	chipSerial bool // useChipSerialAsIccsn: the chip's serial is the ICCSN, not a CMS serial
}

// Build validates a plan against the runner's dependencies (module
// allow-list, card profile compilation, PKCS#12 and certificate values,
// prompts in headless mode) and turns it into the engine's selection and
// steps. It does no card or token I/O. A failure is a *Failure with a
// validation code.
func Build(plan *dsc.Plan, deps Deps) (Selection, []Step, error) {
	j := &job{plan: plan, deps: deps, tokens: map[Location]Token{}, logins: map[Location]dsc.Login{},
		values: map[*dsc.Credential]secret.Value{}, secret: map[string]bool{}, rules: map[*dsc.Credential][]PINRule{}}
	if plan.Description != nil {
		j.file = plan.Description.Name
	}
	for _, o := range plan.Outputs {
		if o.Secret {
			j.secret[strings.ToLower(o.Field)] = true
		}
	}
	sel := Selection{Skip: deps.Skip}
	mod := plan.Module
	if mod == nil && plan.Description != nil {
		// The planner names a module only for steps it knows need one; the
		// runner also reads encrypted PINs through the token, and after a
		// card profile looks for a stand-in token.
		mod = plan.Description.Settings.Library(plan.Platform)
		if mod != nil && !anyStep[*dsc.ReadEncryptedPINsStep](plan) {
			if deps.Tokens == nil || !deps.Tokens.Allowed(mod.Text) {
				mod = nil // optional here: only a stand-in token would use it
			}
		}
	}
	if mod != nil {
		j.module = mod.Text
		if deps.Tokens == nil {
			return sel, nil, j.vfail(api.CodeConfig, mod.Key, mod.Pos, "this job needs PKCS#11 and no token access is configured")
		}
		if !deps.Tokens.Allowed(j.module) {
			return sel, nil, j.vfail(api.CodeModuleNotAllowed, mod.Key, mod.Pos,
				"PKCS#11 module %q is not allowed by the configuration ([pkcs11] module)", j.module)
		}
	}
	if deps.Headless {
		for _, c := range j.credentials() {
			if c.Prompt != nil && !c.Prompt.PinPad { // a PIN pad needs no dialog
				return sel, nil, j.vfail(api.CodePromptUnavailable, c.Key, c.Pos, "%s needs a local PIN dialog (%s) and this agent is headless", c.Key, c.Prompt)
			}
		}
	}
	var steps []Step
	for _, ps := range plan.Steps {
		switch ps := ps.(type) {
		case *dsc.SelectCardStep:
			sel.ICCSN, sel.WithATR = ps.Select.ICCSN, ps.Select.WithATR
			j.selectBy(&sel, ps.Select.UseChipSerial)
			continue
		case *dsc.RetrieveTokensStep:
			sel.AllCards = true
			sel.WithATR = ps.Retrieve.WithATR
			j.selectBy(&sel, ps.Retrieve.UseChipSerial)
			continue
		}
		run, err := j.stepFunc(ps)
		if err != nil {
			return sel, nil, err
		}
		h := ps.Header()
		if needsToken(ps) && j.module == "" {
			return sel, nil, j.vfail(api.CodeInvalidDescription, h.Key, h.Pos, "%s needs a PKCS#11 library (PKCS11Library…) and the description names none", h.Name)
		}
		steps = append(steps, Step{Name: h.Name, Kind: StepKind(ps), Key: h.Key, File: j.file, Line: h.Pos.Line, Run: run, Check: j.checkFunc(ps), dry: j.dryStep(ps, run)})
	}
	if err := j.padValues(); err != nil {
		return sel, nil, err
	}
	if check := j.padCheck(); check != nil && len(steps) > 0 {
		steps[0].Check = both(check, steps[0].Check)
	}
	if len(steps) == 0 && !sel.AllCards && len(plan.Outputs) == 0 {
		// Reporting ok for a job that touched nothing would tell the
		// portal a card was encoded.
		return sel, nil, j.vfail(api.CodeInvalidDescription, "", dsc.Pos{File: j.file, Line: 1},
			"the description asks for nothing to be done: no card step (DeleteProfile, InitToken, an application, iccsnfield, …) and no output field")
	}
	// The values the job gives meet the card profile's rules; prompted ones
	// are checked as they are entered, before anything is erased.
	for _, c := range j.credentials() {
		if c.Prompt == nil {
			if err := j.checkPIN(c, c.Value); err != nil {
				return sel, nil, err
			}
		}
	}
	if err := j.prepareProfile(); err != nil {
		return sel, nil, err
	}
	return sel, steps, nil
}

// compile returns the job's compiled profile: the one Runner.Plan made, or
// a new one.
func (j *job) compile(name string, src []byte) (Profile, error) {
	if c, ok := j.deps.compiled[name]; ok && bytes.Equal(c.src, src) {
		return c.p, c.err
	}
	return j.deps.Profiles.Compile(name, src)
}

// prepareProfile fills the card profile with the job's values before any
// card I/O: with the PINs when the job gives them all (the prepared profile
// is then what runs), else with stand-ins to find what can be found now —
// the PINs entered in dialogs fill it later.
func (j *job) prepareProfile() error {
	if j.profile == nil {
		return nil
	}
	pins, known := map[string]secret.Value{}, true
	for _, v := range j.profileVars() {
		if v.c.Prompt != nil {
			known = false
		}
		pins[v.name] = v.c.Value
	}
	p, err := j.profile.Prepare(j.init.Params, pins, !known)
	if err != nil {
		f := j.vfail(api.CodeInvalidProfile, j.initAt.Key, j.initAt.Pos, "card profile %s", j.init.Profile)
		f.Err = err
		return f
	}
	if known {
		j.prepared = p
	}
	return nil
}

// addRule records a length rule for c's value.
func (j *job) addRule(c *dsc.Credential, r PINRule) {
	if c != nil && (r.Min > 0 || r.Max > 0) {
		j.rules[c] = append(j.rules[c], r)
	}
}

// checkPIN checks a value against the rules recorded for its credential:
// a PIN the card or token would refuse fails as invalid_field, naming the
// field, before the job's first destructive step.
func (j *job) checkPIN(c *dsc.Credential, v secret.Value) error {
	what := c.Key
	if c.Field != "" {
		what += " (field " + c.Field + ")"
	} else if c.Prompt != nil {
		what = "the " + c.Key + " entered"
	}
	for _, r := range j.rules[c] {
		n := v.Len()
		if n < r.Min || (r.Max > 0 && n > r.Max) {
			f := j.vfail(api.CodeInvalidField, c.Key, c.Pos, "%s has %d characters; %s takes %s", what, n, r.By, lengths(r.Min, r.Max))
			return f
		}
	}
	return nil
}

func lengths(lo, hi int) string {
	switch {
	case hi == 0:
		return fmt.Sprintf("at least %d", lo)
	case lo == 0:
		return fmt.Sprintf("at most %d", hi)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// checkFunc is a step's check before the job's first step (Step.Check):
// what can only be known once the reader is chosen, above all before
// DeleteProfile erases the card.
func (j *job) checkFunc(ps dsc.Step) func(context.Context, *Session) error {
	if j.module == "" || j.deps.Tokens == nil {
		return nil
	}
	switch ps := ps.(type) {
	case *dsc.InitProfileStep:
		return j.initCheck(ps.Init.Label, true)
	case *dsc.InitTokenStep:
		return j.initCheck(ps.Init.Label, false)
	case *dsc.SetPINStep:
		return j.newPINCheck(&ps.PIN)
	case *dsc.ChangePUKStep:
		return j.newPINCheck(&ps.PIN)
	}
	return nil
}

// initCheck checks, before the job's first step, the label and the PINs
// a card profile (profile) or C_InitToken sets against the token's rules.
func (j *job) initCheck(label string, profile bool) func(context.Context, *Session) error {
	c := j.plan.Credentials
	return func(ctx context.Context, s *Session) error {
		t, ti, err := j.tokenInfo(ctx, s)
		if err != nil {
			return err
		}
		if profile && !ti.StandIn {
			return nil // the card's middleware sees what the profile wrote
		}
		if _, err := j.checkLabel(t, label); err != nil {
			return err
		}
		return j.tokenRules(ti, c.PIN, c.SO())
	}
}

// newPINCheck checks, before the job's first step, the new PIN or PUK of
// st against the token's rules.
func (j *job) newPINCheck(st *dsc.PINStep) func(context.Context, *Session) error {
	return func(ctx context.Context, s *Session) error {
		_, ti, err := j.tokenInfo(ctx, s)
		if err != nil {
			return err
		}
		return j.tokenRules(ti, st.New)
	}
}

func (j *job) tokenInfo(ctx context.Context, s *Session) (Token, TokenInfo, error) {
	t, err := j.token(ctx, s, LocationDefault)
	if err != nil {
		return nil, TokenInfo{}, err
	}
	ti, err := t.Info()
	return t, ti, err
}

// tokenRules records the token's PIN lengths for the credentials the job
// sets on it and checks the values already known.
func (j *job) tokenRules(ti TokenInfo, creds ...*dsc.Credential) error {
	r := PINRule{Min: ti.MinPIN, Max: ti.MaxPIN, By: fmt.Sprintf("the token %q", ti.Label)}
	for _, c := range creds {
		if c == nil {
			continue
		}
		j.addRule(c, r)
		if c.Prompt == nil {
			if err := j.checkPIN(c, c.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func (j *job) credentials() []*dsc.Credential {
	c := j.plan.Credentials
	out := []*dsc.Credential{c.PIN, c.InitialPUK, c.PUK, c.Operator, c.SignPIN}
	for _, s := range j.plan.Steps {
		switch s := s.(type) {
		case *dsc.SetPINStep:
			out = append(out, s.PIN.New, s.PIN.Old, s.PIN.SO)
		case *dsc.ChangePUKStep:
			out = append(out, s.PIN.New, s.PIN.Old, s.PIN.SO)
		case *dsc.ApplicationStep:
			out = append(out, s.App.P12Password)
		}
	}
	var res []*dsc.Credential
	for _, c := range out {
		if c != nil {
			res = append(res, c)
		}
	}
	return res
}

// anyStep reports whether p has a step of type T.
func anyStep[T dsc.Step](p *dsc.Plan) bool {
	for _, s := range p.Steps {
		if _, ok := s.(T); ok {
			return true
		}
	}
	return false
}

func needsToken(ps dsc.Step) bool {
	switch ps.(type) {
	case *dsc.InitTokenStep, *dsc.WriteSerialStep, *dsc.SetPINStep, *dsc.ChangePUKStep,
		*dsc.ApplicationStep, *dsc.BlockCardStep, *dsc.ReadEncryptedPINsStep:
		return true
	}
	return false
}

// vfail is a validation failure at a description key.
func (j *job) vfail(code api.Code, key string, pos dsc.Pos, format string, args ...any) *Failure {
	f := fail(code, nil, format, args...)
	f.Step, f.Key, f.File, f.Line, f.Column = "validate", key, pos.File, pos.Line, pos.Col
	if f.File == "" {
		f.File = j.file
	}
	return f
}

func (j *job) stepFunc(ps dsc.Step) (func(context.Context, *Session) error, error) {
	switch ps := ps.(type) {
	case *dsc.DeleteProfileStep:
		return j.deleteProfile, nil
	case *dsc.InitProfileStep:
		if j.deps.Profiles == nil {
			return nil, j.vfail(api.CodeConfig, ps.Key, ps.Pos, "card profiles are not available in this build")
		}
		p, err := j.compile(ps.Init.Profile, ps.Init.ProfileSource)
		if err != nil {
			f := j.vfail(api.CodeInvalidProfile, ps.Key, ps.Pos, "card profile %s", ps.Init.Profile)
			f.Err = err
			return nil, f
		}
		j.profile, j.init, j.initAt = p, &ps.Init, ps.StepHeader
		for _, r := range p.PINRules() {
			j.addRule(j.profileCredential(r.Variable), r)
		}
		if err := j.initNeedsSO(ps.StepHeader); err != nil {
			return nil, err
		}
		init := &ps.Init
		return func(ctx context.Context, s *Session) error { return j.initProfile(ctx, s, init) }, nil
	case *dsc.InitTokenStep:
		if err := j.initNeedsSO(ps.StepHeader); err != nil {
			return nil, err
		}
		label := ps.Init.Label
		return func(ctx context.Context, s *Session) error { return j.initToken(ctx, s, label) }, nil
	case *dsc.WriteSerialStep:
		st := &ps.Serial
		if _, err := parseCMSSerial([]byte(st.Serial)); err != nil {
			f := j.vfail(api.CodeInvalidField, ps.Key, ps.Pos, "CMSCardSerialNumber: the value of field %s cannot serve as an ICCSN", st.Field)
			f.Err = err
			return nil, f
		}
		return func(ctx context.Context, s *Session) error { return j.writeSerial(ctx, s, st) }, nil
	case *dsc.SetPINStep:
		st := &ps.PIN
		return func(ctx context.Context, s *Session) error { return j.pinStep(ctx, s, st) }, nil
	case *dsc.ChangePUKStep:
		st := &ps.PIN
		return func(ctx context.Context, s *Session) error { return j.pinStep(ctx, s, st) }, nil
	case *dsc.ApplicationStep:
		return j.appFunc(ps)
	case *dsc.ApduScriptStep:
		st := &ps.Script
		return func(ctx context.Context, s *Session) error { return j.script(ctx, s, st) }, nil
	case *dsc.BlockCardStep:
		return j.blockCard, nil
	case *dsc.ReadICCSNStep:
		st := &ps.Finalize
		return func(ctx context.Context, s *Session) error { return j.readICCSN(ctx, s, st, true) }, nil
	case *dsc.ReadEncryptedPINsStep:
		if len(j.deps.PINKeys) == 0 {
			return nil, j.vfail(api.CodeConfig, ps.Key, ps.Pos, "reading encrypted PINs needs a decryption key ([pins] decrypt_p12) and none is configured")
		}
		for _, o := range ps.PINs.Outputs {
			if !j.secret[strings.ToLower(o.Field)] {
				return nil, j.vfail(api.CodeSecretOutput, ps.Key, ps.Pos, "field %s would receive the decrypted %s but the job does not mark it secret", o.Field, o.Name)
			}
		}
		st := &ps.PINs
		return func(ctx context.Context, s *Session) error { return j.readPINs(ctx, s, st) }, nil
	case *dsc.ClearFieldsStep:
		st := &ps.Clear
		return func(ctx context.Context, s *Session) error {
			for _, f := range st.Fields {
				deleteFold(s.Outputs, f)
				for k, v := range s.Secrets {
					if strings.EqualFold(k, f) {
						v.Wipe()
						delete(s.Secrets, k)
					}
				}
			}
			return nil
		}, nil
	case *dsc.SelectCardStep, *dsc.RetrieveTokensStep:
		// Build makes these the job's selection.
	}
	h := ps.Header()
	return nil, j.vfail(api.CodeInternal, h.Key, h.Pos, "plan step %s (%v) is the card selection, not a step", h.Name, ps.Kind())
}

// initNeedsSO fails an initialization over PKCS#11 without an SO
// credential.
func (j *job) initNeedsSO(h dsc.StepHeader) error {
	if j.plan.Credentials.SO() == nil && j.module != "" {
		return j.vfail(api.CodeInvalidDescription, h.Key, h.Pos, "%s needs the SO credential (InitialPUK, or Operator_Pin with OperatorPinIsSOCredential)", h.Key)
	}
	return nil
}
func deleteFold(m map[string]string, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// output sets an output field, into Secrets when the job marks it secret.
func (j *job) output(s *Session, field, value string) {
	if j.secret[strings.ToLower(field)] {
		s.Secrets[field] = secret.New(value)
		return
	}
	s.Outputs[field] = value
}

// value resolves a credential, asking the local user once per job for a
// prompted one; op and label say in the dialog what it is for.
func (j *job) value(ctx context.Context, s *Session, c *dsc.Credential, op prompt.Operation, label string) (secret.Value, error) {
	if c == nil {
		return secret.Value{}, nil
	}
	if c.Prompt == nil {
		return c.Value, nil
	}
	if c.Prompt.PinPad {
		return secret.Value{}, padValue(c, label)
	}
	if v, ok := j.values[c]; ok {
		return v, nil
	}
	a, err := j.ask(ctx, s, c, op, label)
	if err != nil {
		return secret.Value{}, err
	}
	a.Current.Wipe() // only dialog 3 has it, and only a PIN change uses it
	return a.PIN, nil
}

// ask shows c's dialog and checks the value entered against c's rules; the
// value is kept for the rest of the job (asked once) and wiped at its end.
// For dialog 3 the answer's Current is the caller's to wipe.
func (j *job) ask(ctx context.Context, s *Session, c *dsc.Credential, op prompt.Operation, label string) (prompt.Answer, error) {
	r := prompt.Request{Kind: prompt.Kind(c.Prompt.String()), Operation: op, Label: label}
	r.MinLen, r.MaxLen = j.lengthRule(c)
	a, err := s.Ask(ctx, r)
	if err != nil {
		a.Wipe()
		return prompt.Answer{}, fmt.Errorf("asking for %s: %w", label, err)
	}
	if err := j.checkPIN(c, a.PIN); err != nil {
		a.Wipe()
		var f *Failure
		if errors.As(err, &f) {
			f.Step = "" // the step that asked, not validation
		}
		return prompt.Answer{}, err
	}
	v := a.PIN
	j.values[c] = v
	s.OnEnd(func() { v.Wipe() })
	return a, nil
}

// lengthRule is the narrowest length range of c's rules, for the dialog to
// check while the user types (checkPIN checks the value again).
func (j *job) lengthRule(c *dsc.Credential) (lo, hi int) {
	for _, r := range j.rules[c] {
		lo = max(lo, r.Min)
		if r.Max > 0 && (hi == 0 || r.Max < hi) {
			hi = r.Max
		}
	}
	return lo, hi
}

func (j *job) soValue(ctx context.Context, s *Session, op prompt.Operation) (secret.Value, error) {
	if j.so != nil {
		return *j.so, nil
	}
	c := j.plan.Credentials.SO()
	if c == nil {
		return secret.Value{}, fail(api.CodeInvalidDescription, nil, "no SO credential (InitialPUK, or Operator_Pin with OperatorPinIsSOCredential)")
	}
	return j.value(ctx, s, c, op, c.Key)
}

// token opens the job's token at loc once.
func (j *job) token(ctx context.Context, s *Session, loc Location) (Token, error) {
	if t := j.tokens[loc]; t != nil {
		return t, nil
	}
	t, err := j.deps.Tokens.Open(ctx, j.module, s.Reader, loc)
	if err != nil {
		return nil, fmt.Errorf("opening the %s token for reader %q: %w", loc, s.Reader, err)
	}
	j.tokens[loc] = t
	j.logins[loc] = dsc.LoginNone
	s.OnEnd(func() { t.Logout(); t.Close() })
	return t, nil
}

// login brings the token at loc to the wanted login state.
func (j *job) login(ctx context.Context, s *Session, loc Location, want dsc.Login) (Token, error) {
	t, err := j.token(ctx, s, loc)
	if err != nil {
		return nil, err
	}
	if want == dsc.LoginHighest {
		switch c := j.plan.Credentials; {
		case c.SO() != nil:
			want = dsc.LoginSO
		case c.PIN != nil:
			want = dsc.LoginUser
		default:
			want = dsc.LoginNone
		}
	}
	if j.logins[loc] == want {
		return t, nil
	}
	if j.logins[loc] != dsc.LoginNone {
		if err := t.Logout(); err != nil {
			return nil, fmt.Errorf("logging out: %w", err)
		}
		j.logins[loc] = dsc.LoginNone
	}
	var v secret.Value
	var who string
	switch want {
	case dsc.LoginNone:
		return t, nil
	case dsc.LoginSO:
		who = "SO credential"
		if c := j.plan.Credentials.SO(); j.so == nil && padSource(c) {
			err = s.PadWait(prompt.Request{Operation: prompt.OpLogin, Label: c.Key}, func() error { return t.LoginPad(true) })
		} else if v, err = j.soValue(ctx, s, prompt.OpLogin); err == nil {
			err = t.LoginSO(v)
		}
	case dsc.LoginUser, dsc.LoginSignature:
		c, label := j.plan.Credentials.PIN, "PIN"
		if want == dsc.LoginSignature {
			c, label = j.plan.Credentials.SignPIN, "SignPIN"
		}
		who = label
		if c == nil {
			return nil, fail(api.CodeInvalidDescription, nil, "logging in needs %s and the description gives none", label)
		}
		if padSource(c) {
			err = s.PadWait(prompt.Request{Operation: prompt.OpLogin, Label: label}, func() error { return t.LoginPad(false) })
		} else if v, err = j.value(ctx, s, c, prompt.OpLogin, label); err == nil {
			err = t.Login(v)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("logging in with the %s: %w", who, err)
	}
	j.logins[loc] = want
	return t, nil
}

// padSource reports whether c is entered on the PIN pad
// (!FROM_PROTECTED_AUTHENTICATION_PATH).
func padSource(c *dsc.Credential) bool { return c != nil && c.Prompt != nil && c.Prompt.PinPad }

// padValue is the failure for a PIN-pad credential whose value the job
// needs: the pad gives the PIN to the token's login only, never to us.
func padValue(c *dsc.Credential, use string) *Failure {
	f := fail(api.CodeNotSupported, nil, "%s comes from the PIN pad (!FROM_PROTECTED_AUTHENTICATION_PATH), which only logs in to the token; %s needs the value itself", c.Key, use)
	f.Key, f.File, f.Line, f.Column = c.Key, c.Pos.File, c.Pos.Line, c.Pos.Col
	return f
}

// padValues refuses, before any card I/O, a job that needs the value of
// a PIN-pad credential: a card profile's PINs, a token's initial SO
// credential and PIN, the PINs a PIN step sets or shows, a PKCS#12
// password.
func (j *job) padValues() error {
	type use struct {
		c   *dsc.Credential
		why string
	}
	var uses []use
	cr := j.plan.Credentials
	if anyStep[*dsc.InitProfileStep](j.plan) {
		for _, v := range j.profileVars() {
			uses = append(uses, use{v.c, "the card profile"})
		}
	}
	if anyStep[*dsc.InitTokenStep](j.plan) {
		uses = append(uses, use{cr.SO(), "C_InitToken"}, use{cr.PIN, "C_InitPIN"})
	}
	for _, ps := range j.plan.Steps {
		switch ps := ps.(type) {
		case *dsc.SetPINStep:
			uses = append(uses, use{ps.PIN.New, ps.Key}, use{ps.PIN.Old, ps.Key})
			if ps.PIN.SO != cr.SO() { // the job's SO credential only logs in
				uses = append(uses, use{ps.PIN.SO, ps.Key})
			}
		case *dsc.ChangePUKStep:
			// C_SetPIN takes the current PUK too.
			uses = append(uses, use{ps.PIN.New, ps.Key}, use{ps.PIN.Old, ps.Key}, use{cr.SO(), ps.Key})
		case *dsc.ApplicationStep:
			uses = append(uses, use{ps.App.P12Password, ps.Key})
		}
	}
	for _, u := range uses {
		if padSource(u.c) {
			f := padValue(u.c, u.why)
			f.Step = "validate"
			if f.File == "" {
				f.File = j.file
			}
			return f
		}
	}
	return nil
}

// padCheck, for a job that logs in on a PIN pad, checks before the first
// step that the token has one (CKF_PROTECTED_AUTHENTICATION_PATH): else
// not_supported, before anything is written. nil when the job uses no pad.
func (j *job) padCheck() func(context.Context, *Session) error {
	if j.module == "" || j.deps.Tokens == nil {
		return nil
	}
	cr := j.plan.Credentials
	type padLogin struct {
		c   *dsc.Credential
		loc Location
	}
	var pads []padLogin
	for _, p := range []padLogin{{cr.PIN, LocationDefault}, {cr.SO(), LocationDefault}, {cr.SignPIN, LocationSignature}} {
		if padSource(p.c) {
			pads = append(pads, p)
		}
	}
	if len(pads) == 0 {
		return nil
	}
	return func(ctx context.Context, s *Session) error {
		for _, p := range pads {
			t, err := j.token(ctx, s, p.loc)
			if err != nil {
				return err
			}
			ti, err := t.Info()
			if err != nil {
				return err
			}
			if !ti.PinPad {
				return j.vfail(api.CodeNotSupported, p.c.Key, p.c.Pos, "%s is to be entered on the PIN pad (!FROM_PROTECTED_AUTHENTICATION_PATH) and the %s token %q has none (no CKF_PROTECTED_AUTHENTICATION_PATH)", p.c.Key, p.loc, ti.Label)
			}
		}
		return nil
	}
}

// both runs a, then b when set.
func both(a, b func(context.Context, *Session) error) func(context.Context, *Session) error {
	if b == nil {
		return a
	}
	return func(ctx context.Context, s *Session) error {
		if err := a(ctx, s); err != nil {
			return err
		}
		return b(ctx, s)
	}
}

func (j *job) logout(loc Location) error {
	t := j.tokens[loc]
	if t == nil || j.logins[loc] == dsc.LoginNone {
		return nil
	}
	j.logins[loc] = dsc.LoginNone
	return t.Logout()
}

// ownsCard reports whether the job lays out the card itself (a card profile
// over PC/SC), so PC/SC-side operations (erase) are ours to do.
func (j *job) ownsCard() bool {
	if j.module == "" {
		return true
	}
	return anyStep[*dsc.InitProfileStep](j.plan)
}

// deleteProfile erases the card (DeleteProfile): over PC/SC with the card
// profile engine when the job lays the card out itself, and on the token
// (every object, logged in with the highest credential given) when the job
// names a PKCS#11 module.
func (j *job) deleteProfile(ctx context.Context, s *Session) error {
	if err := j.eraseCard(ctx, s); err != nil {
		return err
	}
	if j.module == "" {
		return nil
	}
	t, err := j.token(ctx, s, LocationDefault)
	if err != nil {
		return err
	}
	ti, err := t.Info()
	if err != nil {
		return err
	}
	if !ti.Initialized {
		return nil // nothing on it
	}
	if _, err := j.login(ctx, s, LocationDefault, dsc.LoginHighest); err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	if err := t.Erase(); err != nil {
		return fmt.Errorf("erasing the token: %w", err)
	}
	return nil
}

// eraseCard is DeleteProfile's part over PC/SC: the PINs of a job that
// sets the card up again are asked first, then the card is erased when the
// job lays it out itself (ownsCard).
func (j *job) eraseCard(ctx context.Context, s *Session) error {
	// The PINs the card (or token) is then set up with come from local
	// dialogs before anything is erased: a refused dialog, or a card pulled
	// while it is open, leaves the card as it was.
	if anyStep[*dsc.InitProfileStep](j.plan) || anyStep[*dsc.InitTokenStep](j.plan) {
		if _, err := j.profilePINs(ctx, s); err != nil {
			return err
		}
	}
	if j.ownsCard() && j.deps.Profiles != nil {
		// The highest credential given: the PUK, else the PIN. A job that
		// only erases logs in; one that initializes says so.
		op := prompt.OpLogin
		if anyStep[*dsc.InitProfileStep](j.plan) || anyStep[*dsc.InitTokenStep](j.plan) {
			op = prompt.OpInitialize
		}
		var pin, puk secret.Value
		var err error
		if c := j.plan.Credentials; c.InitialPUK != nil {
			puk, err = j.value(ctx, s, c.InitialPUK, op, "PUK")
		} else {
			pin, err = j.value(ctx, s, c.PIN, op, "PIN")
		}
		if err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		if err := j.deps.Profiles.Erase(ctx, s.Conn, pin, puk); err != nil {
			return err // "erasing the card: …"
		}
	}
	return nil
}

// profileVar is a profile PIN variable with the credential that fills it.
type profileVar struct {
	name, label string
	c           *dsc.Credential
}

// profileVars are the PIN variables the job gives a card profile.
func (j *job) profileVars() []profileVar {
	c, v := j.plan.Credentials, dsc.ProfileVariable
	var out []profileVar
	for _, p := range []profileVar{{v.PIN1, "PIN", c.PIN}, {v.PIN2, "SignPIN", c.SignPIN}, {v.PUK, "PUK", c.InitialPUK}, {v.OP, "operator PIN", c.Operator}} {
		if p.c != nil {
			out = append(out, p)
		}
	}
	return out
}

// profileCredential is the credential that fills a profile PIN variable.
func (j *job) profileCredential(variable string) *dsc.Credential {
	c, v := j.plan.Credentials, dsc.ProfileVariable
	switch variable {
	case v.PIN1:
		return c.PIN
	case v.PIN2:
		return c.SignPIN
	case v.PUK:
		return c.InitialPUK
	case v.OP:
		return c.Operator
	}
	return nil
}

// profilePINs are the PIN variables a card profile receives, asked for now
// when they come from dialogs.
func (j *job) profilePINs(ctx context.Context, s *Session) (map[string]secret.Value, error) {
	pins := map[string]secret.Value{}
	for _, p := range j.profileVars() {
		v, err := j.value(ctx, s, p.c, prompt.OpInitialize, p.label)
		if err != nil {
			return nil, err
		}
		pins[p.name] = v
	}
	return pins, nil
}

// checkLabel refuses to initialise a token that the configuration finds by
// another label (it would be lost for the next job).
func (j *job) checkLabel(t Token, label string) (string, error) {
	ti, err := t.Info()
	if err != nil {
		return "", err
	}
	if ti.FixedLabel != "" {
		if label != "" && label != ti.FixedLabel {
			return "", fail(api.CodeConfig, nil, "the configuration maps this reader to token %q but the job initialises it as %q", ti.FixedLabel, label)
		}
		label = ti.FixedLabel
	}
	if label == "" {
		label = "cardwright"
	}
	return label, nil
}

// initProfile runs the card profile over PC/SC. When the job also names a
// PKCS#11 module, the token that stands for the card is initialised with the
// job's SO credential, label and PIN, and receives the encrypted-PIN blob, so
// the PKCS#11 view agrees with the card (the test-stack arrangement of
// docs/runner.md: the virtual card has no middleware of its own).
func (j *job) initProfile(ctx context.Context, s *Session, init *dsc.InitStep) error {
	var t Token
	label := init.Label
	if j.module != "" {
		tok, err := j.token(ctx, s, LocationDefault)
		if err != nil {
			return err
		}
		ti, err := tok.Info()
		if err != nil {
			return err
		}
		if ti.StandIn {
			// Card middleware sees the profile's work by itself; a stand-in
			// token is set up below.
			if label, err = j.checkLabel(tok, label); err != nil {
				return err
			}
			t = tok
		}
	}
	run, err := j.runProfile(ctx, s, init)
	if err != nil {
		return err
	}
	pinFile := run.PersInfo
	if t == nil {
		return nil
	}
	if err := j.setupToken(ctx, s, t, label); err != nil {
		return err
	}
	if blob, err := pinblob.FindDataObject(pinFile, pinblob.Label); err == nil {
		if _, err := j.login(ctx, s, LocationDefault, dsc.LoginUser); err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		// A module that cannot store data objects leaves the blob on the
		// card only (docs/runner.md).
		if err := t.WriteData(pinblob.Label, blob); err != nil && !errors.Is(err, iso7816.ErrNotSupported) {
			return fmt.Errorf("storing the encrypted PINs on the token: %w", err)
		}
	}
	return nil
}

// runProfile runs the card profile on the session's card, its PINs asked
// for now when they come from dialogs. A recording Conn (a dry run's, a
// run's with Job.Transcript) gets the profile's own transcript, cpf's,
// which knows which data are secret: the profile runs on the Conn under it.
func (j *job) runProfile(ctx context.Context, s *Session, init *dsc.InitStep) (ProfileRun, error) {
	prepared := j.prepared
	if prepared == nil {
		pins, err := j.profilePINs(ctx, s)
		if err != nil {
			return ProfileRun{}, err
		}
		if prepared, err = j.profile.Prepare(init.Params, pins, false); err != nil {
			return ProfileRun{}, fmt.Errorf("preparing card profile %s: %w", init.Profile, err)
		}
	}
	if err := s.BeforeWrite(); err != nil {
		return ProfileRun{}, err
	}
	var card iso7816.Card = s.Conn
	rec, _ := s.Conn.(*recorder)
	if rec != nil {
		card = rec.Conn
	}
	run, err := prepared.Run(ctx, card)
	if rec != nil {
		rec.profile(run) // also the part of a run that stopped
	}
	if err != nil {
		return run, fmt.Errorf("running card profile %s: %w", init.Profile, err)
	}
	j.profiled, j.pinFile = true, run.PersInfo
	return run, nil
}

// setupToken does C_InitToken with the SO credential and label, then
// C_InitPIN with the user PIN when the job gives one.
func (j *job) setupToken(ctx context.Context, s *Session, t Token, label string) error {
	so, err := j.soValue(ctx, s, prompt.OpInitialize)
	if err != nil {
		return err
	}
	if err := j.logout(LocationDefault); err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	if err := t.InitToken(so, label); err != nil {
		return fmt.Errorf("initialising the token as %q: %w", label, err)
	}
	if j.plan.Credentials.PIN == nil {
		return nil
	}
	pin, err := j.value(ctx, s, j.plan.Credentials.PIN, prompt.OpInitialize, "PIN")
	if err != nil {
		return err
	}
	if _, err := j.login(ctx, s, LocationDefault, dsc.LoginSO); err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	if err := t.InitPIN(pin); err != nil {
		return fmt.Errorf("setting the user PIN: %w", err)
	}
	return j.logout(LocationDefault)
}

// initToken initialises the token with PKCS#11 C_InitToken.
func (j *job) initToken(ctx context.Context, s *Session, label string) error {
	t, err := j.token(ctx, s, LocationDefault)
	if err != nil {
		return err
	}
	if label, err = j.checkLabel(t, label); err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	return j.setupToken(ctx, s, t, label)
}

func (j *job) writeSerial(ctx context.Context, s *Session, st *dsc.SerialStep) error {
	want := dsc.LoginUser
	if j.plan.Credentials.PIN == nil {
		want = dsc.LoginSO
	}
	t, err := j.login(ctx, s, LocationDefault, want)
	if err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	if err := t.WriteData(CMSSerialLabel, []byte(st.Serial)); err != nil {
		return fmt.Errorf("writing the card serial number: %w", err)
	}
	return nil
}

func (j *job) pinStep(ctx context.Context, s *Session, st *dsc.PINStep) error {
	switch st.Mode {
	case dsc.PINReset:
		newPIN, err := j.value(ctx, s, st.New, prompt.OpSetPIN, "new PIN")
		if err != nil {
			return err
		}
		var t Token
		if st.SO != nil && st.SO != j.plan.Credentials.SO() {
			so, err := j.value(ctx, s, st.SO, prompt.OpSetPIN, st.SO.Key)
			if err != nil {
				return err
			}
			if err := j.logout(LocationDefault); err != nil {
				return err
			}
			if t, err = j.token(ctx, s, LocationDefault); err != nil {
				return err
			}
			if err := t.LoginSO(so); err != nil {
				return fmt.Errorf("logging in with the %s: %w", st.SO.Key, err)
			}
			j.logins[LocationDefault] = dsc.LoginSO
		} else if t, err = j.login(ctx, s, LocationDefault, dsc.LoginSO); err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		if err := t.InitPIN(newPIN); err != nil {
			return fmt.Errorf("setting the user PIN: %w", err)
		}
		return j.logout(LocationDefault)
	case dsc.PINChange:
		var oldPIN, newPIN secret.Value
		var err error
		if st.Old == nil && st.New.Prompt != nil && !st.New.Prompt.PinPad {
			// Dialog 3: the current PIN and the new one, in one window.
			a, err := j.ask(ctx, s, st.New, prompt.OpChangePIN, "PIN")
			if err != nil {
				return err
			}
			oldPIN, newPIN = a.Current, a.PIN
			defer oldPIN.Wipe()
		} else {
			if oldPIN, err = j.value(ctx, s, st.Old, prompt.OpChangePIN, "current PIN"); err != nil {
				return err
			}
			if newPIN, err = j.value(ctx, s, st.New, prompt.OpChangePIN, "new PIN"); err != nil {
				return err
			}
		}
		t, err := j.login(ctx, s, LocationDefault, dsc.LoginNone)
		if err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		if err := t.SetPIN(oldPIN, newPIN); err != nil {
			return fmt.Errorf("changing the user PIN: %w", err)
		}
		return nil
	case dsc.PINChangeSO:
		oldPUK, err := j.soValue(ctx, s, prompt.OpChangePIN)
		if st.Old != nil {
			oldPUK, err = j.value(ctx, s, st.Old, prompt.OpChangePIN, st.Old.Key)
		}
		if err != nil {
			return err
		}
		newPUK, err := j.value(ctx, s, st.New, prompt.OpChangePIN, "new PUK")
		if err != nil {
			return err
		}
		if err := j.logout(LocationDefault); err != nil {
			return err
		}
		t, err := j.token(ctx, s, LocationDefault)
		if err != nil {
			return err
		}
		if err := t.LoginSO(oldPUK); err != nil {
			return fmt.Errorf("logging in with the PUK: %w", err)
		}
		j.logins[LocationDefault] = dsc.LoginSO
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		if err := t.SetPIN(oldPUK, newPUK); err != nil {
			return fmt.Errorf("changing the PUK: %w", err)
		}
		if !j.plan.Credentials.SOIsOperator {
			j.so = &newPUK
		}
		return j.logout(LocationDefault)
	}
	return fail(api.CodeInternal, nil, "PIN step mode %v", st.Mode)
}

func (j *job) appFunc(ps *dsc.ApplicationStep) (func(context.Context, *Session) error, error) {
	app := &ps.App
	switch app.Action {
	case dsc.AppGenerateKey, dsc.AppUseObject:
		if j.deps.Issuer == nil {
			return nil, j.vfail(api.CodeConfig, ps.Key, ps.Pos, "Application_%s needs a certificate issuer and none is connected", app.ID)
		}
		if app.Action == dsc.AppUseObject && app.Criteria == nil {
			return nil, j.vfail(api.CodeInvalidDescription, ps.Key, ps.Pos, "Application_%s: ObjectCriteria missing", app.ID)
		}
	case dsc.AppWriteCertificate:
		if _, err := x509.ParseCertificate(app.Certificate); err != nil {
			f := j.vfail(api.CodeInvalidField, ps.Key, ps.Pos, "Application_%s: the Certificate field is not a DER certificate", app.ID)
			f.Err = err
			return nil, f
		}
	case dsc.AppWriteP12:
		if app.P12Password != nil && app.P12Password.Prompt == nil {
			if _, err := openP12(app.P12, app.P12Password.Value); err != nil {
				return nil, j.vfail(api.CodeInvalidField, ps.Key, ps.Pos, "Application_%s: the PKCS#12 of the Certificate field %v", app.ID, err)
			}
		}
	case dsc.AppWriteCertKeyList:
		for i, der := range app.CertKeyList {
			if app.CertKeyListMode == "p12" {
				if app.P12Password != nil && app.P12Password.Prompt != nil {
					break // opened once the password is entered, before the first is written
				}
				if _, err := openP12(der, p12Password(app)); err != nil {
					return nil, j.vfail(api.CodeInvalidField, ps.Key, ps.Pos, "Application_%s: the PKCS#12 of CertKeyList item %d %v", app.ID, i+1, err)
				}
				continue
			}
			if _, err := x509.ParseCertificate(der); err != nil {
				return nil, j.vfail(api.CodeInvalidField, ps.Key, ps.Pos, "Application_%s: CertKeyList item %d is not a DER certificate", app.ID, i+1)
			}
		}
	case dsc.AppKeyArchival:
		// KeyArchivalRequest without a PKCS#12 in the job: the issuer makes
		// the key and answers with a PKCS#12 mid-job.
		if j.deps.Issuer == nil {
			return nil, j.vfail(api.CodeConfig, ps.Key, ps.Pos, "Application_%s needs a certificate issuer that archives keys (KeyArchivalRequest) and none is connected", app.ID)
		}
		if _, ok := j.deps.Issuer.(issuer.Archiver); !ok {
			return nil, j.vfail(api.CodeConfig, ps.Key, ps.Pos, "Application_%s: KeyArchivalRequest needs a PKCS#12 from the certificate issuer, and the connected issuer cannot archive keys", app.ID)
		}
	default:
		return nil, j.vfail(api.CodeInternal, ps.Key, ps.Pos, "Application_%s: action %v", app.ID, app.Action)
	}
	return func(ctx context.Context, s *Session) error { return j.application(ctx, s, app) }, nil
}

func (j *job) application(ctx context.Context, s *Session, app *dsc.AppStep) error {
	loc, want := LocationDefault, dsc.LoginUser
	if app.Signature {
		loc, want = LocationSignature, dsc.LoginSignature
	}
	t, err := j.login(ctx, s, loc, want)
	if err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	label := app.Template
	if label == "" {
		label = "Application_" + app.ID
	}
	switch app.Action {
	case dsc.AppGenerateKey:
		typ, bits := app.KeyType, app.KeySize
		if typ == "" {
			typ = "RSA"
		}
		key, err := t.GenerateKeyPair(KeySpec{Type: typ, Bits: bits, Label: label})
		if err != nil {
			return fmt.Errorf("generating a %s-%d key pair: %w", typ, bits, err)
		}
		id, err := KeyID(key.Public())
		if err != nil {
			return err
		}
		return j.certify(ctx, s, t, app, key, label, id)
	case dsc.AppUseObject:
		c := app.Criteria
		objs, err := t.Find(Criteria{Class: c.Class, ClassID: c.ClassID, Attr: c.Attribute, AttrID: c.AttrID, Type: c.Type, Text: c.Text, Bytes: c.Bytes})
		if err != nil {
			return fmt.Errorf("finding %s: %w", app.Criteria, err)
		}
		if len(objs) != 1 {
			return fail(api.CodeTokenError, nil, "ObjectCriteria %s matches %d objects, want 1", app.Criteria, len(objs))
		}
		key, err := t.Signer(objs[0].ID)
		if err != nil {
			return fmt.Errorf("finding the private key of %s: %w", app.Criteria, err)
		}
		return j.certify(ctx, s, t, app, key, label, objs[0].ID)
	case dsc.AppWriteCertificate:
		cert, _ := x509.ParseCertificate(app.Certificate)
		if err := t.WriteCertificate(app.Certificate, label, keyID(cert)); err != nil {
			return fmt.Errorf("writing the certificate: %w", err)
		}
	case dsc.AppWriteP12:
		pw, err := j.value(ctx, s, app.P12Password, prompt.OpOther, "PKCS#12 password")
		if err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		cert, err := openP12(app.P12, pw)
		if err != nil {
			return fail(api.CodeInvalidField, nil, "Application_%s: the PKCS#12 of the Certificate field %v; nothing was written", app.ID, err)
		}
		return storeP12(t, app.P12, pw, label, cert)
	case dsc.AppKeyArchival:
		return j.archive(ctx, s, t, app, label)
	case dsc.AppWriteCertKeyList:
		if app.CertKeyListMode == "p12" {
			return j.writeP12List(ctx, s, t, app)
		}
		var serials []string
		for _, der := range app.CertKeyList {
			cert, _ := x509.ParseCertificate(der)
			if err := t.WriteCertificate(der, cert.Subject.CommonName, keyID(cert)); err != nil {
				return fmt.Errorf("writing certificate %X: %w", cert.SerialNumber, err)
			}
			serials = append(serials, fmt.Sprintf("%X", cert.SerialNumber))
		}
		if app.ReturnField != "" {
			j.output(s, app.ReturnField, strings.Join(serials, ","))
		}
	}
	return nil
}

// openP12 opens a DER PKCS#12 with its password and checks that its
// certificate is for its private key; it returns the certificate. Its
// errors complete a sentence about the PKCS#12 and never hold the
// password.
func openP12(der []byte, pw secret.Value) (*x509.Certificate, error) {
	key, cert, _, err := pkcs12.DecodeChain(der, pw.Reveal())
	if err != nil {
		return nil, fmt.Errorf("does not open with its password: %w", err)
	}
	if err := p12Pair(key, cert); err != nil {
		return nil, fmt.Errorf("holds a certificate that %w", err)
	}
	return cert, nil
}

// storeP12 writes an opened PKCS#12 (key, certificate, chain) under its
// certificate key's CKA_ID: the one path of WriteP12Data, key archival
// and CertKeyList of PKCS#12s.
func storeP12(t Token, der []byte, pw secret.Value, label string, cert *x509.Certificate) error {
	if err := t.ImportPKCS12(der, pw, label, keyID(cert)); err != nil {
		return fmt.Errorf("storing the PKCS#12: %w", err)
	}
	return nil
}

// p12Password is the password of a CertKeyList of PKCS#12s given in the
// job: P12PASSWORD's value, empty when the description gives none.
func p12Password(app *dsc.AppStep) secret.Value {
	if app.P12Password == nil {
		return secret.Value{}
	}
	return app.P12Password.Value
}

// archive is KeyArchivalRequest without a PKCS#12 in the job: the issuer
// makes and archives the key and answers with a PKCS#12 and its password
// (spec/dsc.md; the portal's request with key_archival, docs/protocol.md),
// which is checked — it opens, its certificate is its key's — before it
// is written. The password is wiped once the PKCS#12 is stored.
func (j *job) archive(ctx context.Context, s *Session, t Token, app *dsc.AppStep, label string) error {
	subj := pkix.Name{CommonName: label}
	if app.CardSerial != "" {
		subj.SerialNumber = app.CardSerial
	}
	resume := s.Hold()
	a, err := j.deps.Issuer.(issuer.Archiver).Archive(ctx, issuer.Request{KeyArchival: true, Application: app.ID, Template: app.Template, Subject: subj})
	resume()
	s.Waited() // the portal (or a person behind it) took its time
	defer a.Password.Wipe()
	if err != nil {
		return issueFailure(ctx, app, err)
	}
	if len(a.PKCS12) == 0 {
		return fail(api.CodeIssuerError, nil, "the issuer answered the key archival of Application_%s without a PKCS#12; nothing was written", app.ID)
	}
	if a.Password.IsZero() {
		return fail(api.CodeIssuerError, nil, "the issuer answered the key archival of Application_%s with a PKCS#12 but no password; nothing was written", app.ID)
	}
	cert, err := openP12(a.PKCS12, a.Password)
	if err != nil {
		return fail(api.CodeIssuerError, nil, "the PKCS#12 the issuer answered for Application_%s %v; nothing was written", app.ID, err)
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	return storeP12(t, a.PKCS12, a.Password, label, cert)
}

// writeP12List writes a CertKeyList of PKCS#12s: every item is opened
// with the P12PASSWORD and checked before the first is written, then each
// is stored with its certificate's subject CN as label; the return field
// gets the certificates' serial numbers (hex, comma-separated) of the
// items written, also when a later one fails.
func (j *job) writeP12List(ctx context.Context, s *Session, t Token, app *dsc.AppStep) error {
	pw := p12Password(app)
	if app.P12Password != nil && app.P12Password.Prompt != nil {
		var err error
		if pw, err = j.value(ctx, s, app.P12Password, prompt.OpOther, "PKCS#12 password"); err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
	}
	certs := make([]*x509.Certificate, len(app.CertKeyList))
	for i, der := range app.CertKeyList {
		cert, err := openP12(der, pw)
		if err != nil {
			return fail(api.CodeInvalidField, nil, "Application_%s: the PKCS#12 of CertKeyList item %d %v; nothing was written", app.ID, i+1, err)
		}
		certs[i] = cert
	}
	var serials []string
	defer func() {
		if app.ReturnField != "" {
			j.output(s, app.ReturnField, strings.Join(serials, ","))
		}
	}()
	for i, der := range app.CertKeyList {
		if err := storeP12(t, der, pw, certs[i].Subject.CommonName, certs[i]); err != nil {
			return fmt.Errorf("CertKeyList item %d (certificate %X): %w", i+1, certs[i].SerialNumber, err)
		}
		serials = append(serials, fmt.Sprintf("%X", certs[i].SerialNumber))
	}
	return nil
}

// keyID is the CKA_ID of a certificate's key (KeyID).
func keyID(cert *x509.Certificate) []byte {
	id, err := KeyID(cert.PublicKey)
	if err != nil {
		sum := sha1.Sum(cert.RawSubjectPublicKeyInfo)
		return sum[:]
	}
	return id
}

// certify builds a PKCS#10 request with the token key, has the issuer sign
// it, and writes the certificate under the key's CKA_ID once it is sure the
// certificate is for that key and the card is still the job's.
func (j *job) certify(ctx context.Context, s *Session, t Token, app *dsc.AppStep, key crypto.Signer, label string, id []byte) error {
	subj := pkix.Name{CommonName: label}
	if app.CardSerial != "" {
		subj.SerialNumber = app.CardSerial
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, key)
	if err != nil {
		return fmt.Errorf("signing the certificate request with the card key: %w", err)
	}
	resume := s.Hold()
	der, _, err := j.deps.Issuer.Issue(ctx, issuer.Request{CSR: csr, Application: app.ID, Template: app.Template})
	resume()
	s.Waited() // the portal (or a person behind it) took its time
	if err != nil {
		return issueFailure(ctx, app, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fail(api.CodeIssuerError, err, "the certificate issued for Application_%s does not parse", app.ID)
	}
	if err := sameKey(cert, key.Public(), "the card's key"); err != nil {
		return fail(api.CodeIssuerError, nil, "the certificate issued for Application_%s (serial %X, subject %q) %v; nothing was written",
			app.ID, cert.SerialNumber, cert.Subject.String(), err)
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	if err := t.WriteCertificate(der, label, id); err != nil {
		return fmt.Errorf("writing the certificate: %w", err)
	}
	return nil
}

// p12Pair checks that a PKCS#12's certificate is for its private key.
func p12Pair(key any, cert *x509.Certificate) error {
	k, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("comes with a %T key, which cannot be checked", key)
	}
	return sameKey(cert, k.Public(), "the PKCS#12's private key")
}

// issueFailure maps an issuer's error: a cancelled job stays cancelled
// (the issuer may have noticed first), an issuer's own code is kept, the
// rest is issuer_error.
func issueFailure(ctx context.Context, app *dsc.AppStep, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	var je *api.JobError
	if errors.As(err, &je) && je.Code != "" {
		return &Failure{Code: je.Code, Message: je.Message}
	}
	return fail(api.CodeIssuerError, err, "the certificate for Application_%s was not issued", app.ID)
}

// sameKey reports, as an error naming both key ids, a certificate whose
// public key is not pub.
func sameKey(cert *x509.Certificate, pub crypto.PublicKey, whose string) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := pub.(equaler); ok && k.Equal(cert.PublicKey) {
		return nil
	}
	want, err := KeyID(pub)
	if err != nil {
		return fmt.Errorf("cannot be compared with the key: %w", err)
	}
	return fmt.Errorf("is for key id %X, not for %s (key id %X)", keyID(cert), whose, want)
}

func (j *job) script(ctx context.Context, s *Session, st *dsc.ScriptStep) error {
	var sws []string
	defer func() {
		if st.ResponseField != "" {
			j.output(s, st.ResponseField, strings.Join(sws, ","))
		}
	}()
	for i := range st.Commands {
		c := &st.Commands[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.BeforeWrite(); err != nil {
			return err
		}
		send := s.Conn.Transmit
		if r, ok := s.Conn.(secretTransmitter); ok && c.Secret {
			send = r.TransmitSecret // a transcript masks it
		}
		resp, err := send(c.APDU)
		if err != nil {
			return fmt.Errorf("sending %s line %d: %w", st.File, c.Line, err)
		}
		if len(resp) < 2 {
			return fail(api.CodeApduScript, nil, "%s line %d: response of %d bytes has no status word", st.File, c.Line, len(resp))
		}
		sw := uint16(resp[len(resp)-2])<<8 | uint16(resp[len(resp)-1])
		sws = append(sws, fmt.Sprintf("%04X", sw))
		if !c.Accepts(sw) {
			f := fail(api.CodeApduScript, nil, "%s line %d: status %04X (%s), want %s", st.File, c.Line, sw, iso7816.SWMeaning(sw), strings.Join(c.Expect, " or "))
			f.File, f.Line = st.File, c.Line
			return f
		}
	}
	return nil
}

// blockCard blocks the user PIN: wrong PINs until the token says it is
// blocked (ISO 7816-4 retry counters; PKCS#11 CKR_PIN_LOCKED).
func (j *job) blockCard(ctx context.Context, s *Session) error {
	if err := j.logout(LocationDefault); err != nil {
		return err
	}
	t, err := j.token(ctx, s, LocationDefault)
	if err != nil {
		return err
	}
	pin, err := j.value(ctx, s, j.plan.Credentials.PIN, prompt.OpLogin, "PIN")
	if err != nil {
		return err
	}
	if err := s.BeforeWrite(); err != nil {
		return err
	}
	wrong := secret.New(pin.Reveal() + "-blocked")
	for range 32 {
		err := t.Login(wrong)
		switch {
		case err == nil:
			t.Logout()
			return fail(api.CodeTokenError, nil, "blocking the PIN: the token accepted a wrong PIN")
		case errors.Is(err, iso7816.ErrAuthBlocked):
			return nil
		case !errors.Is(err, iso7816.ErrVerificationFailed):
			return fmt.Errorf("blocking the PIN: %w", err)
		}
	}
	return fail(api.CodeNotSupported, nil, "blocking the PIN: the token does not block it after 32 wrong PINs")
}

// selectBy sets how the job identifies cards: by the CMS serial their
// token carries (read through the job's module, when it names one), unless
// useChipSerialAsIccsn.
func (j *job) selectBy(sel *Selection, chipSerial bool) {
	j.chipSerial, sel.ChipSerial = chipSerial, chipSerial
	if chipSerial || j.module == "" || j.deps.Tokens == nil {
		return
	}
	tokens, module := j.deps.Tokens, j.module
	sel.CMSSerial = func(ctx context.Context, reader string) (string, bool, error) {
		return readCMSSerial(ctx, tokens, module, reader)
	}
}

// readICCSN reports the ICCSN (step 9): the CMS serial the job wrote, else
// the one the card's token carries (with token true; a dry run reads no
// token), unless useChipSerialAsIccsn; else the chip's serial, or the
// token's serial for a card without one.
func (j *job) readICCSN(ctx context.Context, s *Session, st *dsc.FinalizeStep, token bool) error {
	v := st.CMSSerial
	if v == "" && token && !j.chipSerial && j.module != "" {
		t, err := j.token(ctx, s, LocationDefault)
		switch {
		case errors.Is(err, ErrTokenNotFound):
		case err != nil:
			return err
		default:
			if v, _, err = cmsSerialOf(t); err != nil {
				return err
			}
		}
	}
	if v == "" {
		serial := s.Serial
		if len(serial) == 0 && j.module != "" {
			// The card has no GET DATA serial: the token's serial is the ICCSN.
			t, err := j.token(ctx, s, LocationDefault)
			if err != nil {
				return err
			}
			ti, err := t.Info()
			if err != nil {
				return err
			}
			serial, _ = hex.DecodeString(ti.Serial)
			if serial == nil {
				serial = []byte(ti.Serial)
			}
		}
		v = strings.ToUpper(hex.EncodeToString(serial))
	}
	if st.WithATR {
		v += "-" + strings.ToUpper(hex.EncodeToString(s.ATR))
	}
	j.output(s, st.Field, v)
	return nil
}

func (j *job) readPINs(ctx context.Context, s *Session, st *dsc.PINReadStep) error {
	t, err := j.token(ctx, s, LocationDefault)
	if err != nil {
		return err
	}
	blob, err := t.ReadData(pinblob.Label)
	if errors.Is(err, ErrObjectNotFound) {
		return fail(api.CodeNoEncryptedPins, err, "no encrypted PINs on this card")
	}
	if err != nil {
		return fmt.Errorf("reading the encrypted PINs: %w", err)
	}
	pins, err := pinblob.OpenBlob(blob, j.deps.PINKeys)
	var nk *pinblob.NoKeyError
	switch {
	case errors.As(err, &nk):
		return fail(api.CodePinKeyNotFound, nil, "no decryption key found matching #%X", nk.ID)
	case errors.Is(err, pinblob.ErrNoBlob):
		return fail(api.CodeNoEncryptedPins, err, "no encrypted PINs on this card")
	case err != nil:
		return fail(api.CodeCardError, err, "Error Accessing Smartcard (encrypted PINs)")
	}
	// An output whose PIN the blob does not hold stays unset; a blob with
	// none of the wanted PINs is a card without encrypted PINs for this job.
	found := 0
	for _, o := range st.Outputs {
		for _, p := range pins {
			if p.Name == o.Name {
				s.Secrets[o.Field] = p.Value
				found++
			}
		}
	}
	if found == 0 {
		return fail(api.CodeNoEncryptedPins, nil, "the card's encrypted PINs hold none of the PINs asked for")
	}
	return nil
}
