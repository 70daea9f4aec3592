package dsc

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/cardwright/cardwright/secret"
)

// NewPlan validates one job against a checked description and returns the
// steps to run, in the order of docs/dsc.md ("Order of a job"): select the
// card (or list all cards and stop), delete the profile, initialize, write
// the serial, set the PIN, change the PUK, run the applications in order,
// the APDU script, block the card, finalize (ICCSN, encrypted PINs), clear
// fields.
//
// Every field value a step uses is resolved and validated here — base64 for
// profile parameters, booleans, certificates and PKCS#12s decodable — so a
// bad value fails before any card I/O. The error is a PlanErrors; each
// element unwraps to one of ErrInvalidDescription, ErrInvalidField,
// ErrMissingFile, ErrSecretOutput or ErrPlatform.
func NewPlan(d *Description, job Job) (*Plan, error) {
	if d == nil || d.invalid {
		name := ""
		if d != nil {
			name = d.Name
		}
		return nil, PlanErrors{{Kind: ErrInvalidDescription, Pos: Pos{File: name}, Msg: "the description has errors (run cardwright check)"}}
	}
	b := planner{d: d, job: job, p: &Plan{Description: d, Platform: job.Platform}}
	b.build()
	if len(b.errs) > 0 {
		sort.SliceStable(b.errs, func(i, j int) bool { return b.errs[i].Pos.less(b.errs[j].Pos) })
		return nil, b.errs
	}
	return b.p, nil
}

// PlaceholderJob is a job for inspecting a plan without real values (what
// `cardwright check --json` prints): every field without a value reads as
// "<NAME>", placeholder booleans read as true, and placeholder payloads are
// not decoded. Referenced files come from files (may be nil).
func PlaceholderJob(p Platform, files fs.FS) Job {
	return Job{Platform: p, Files: files, placeholders: true}
}

type planner struct {
	d    *Description
	job  Job
	p    *Plan
	errs PlanErrors
	p11  Step // first step that needs PKCS#11
}

func (b *planner) fail(kind error, v *Value, field, format string, args ...any) {
	e := &PlanError{Kind: kind, Field: field, Msg: fmt.Sprintf(format, args...)}
	if v != nil {
		e.Key, e.Pos = v.Key, v.Pos
	}
	b.errs = append(b.errs, e)
}

// fieldValue returns a field's job value (or its default) and whether it
// is a placeholder.
func (b *planner) fieldValue(name string) (string, bool) {
	if v, ok := b.job.Fields[name]; ok {
		return v, false
	}
	for k, v := range b.job.Fields {
		if equalFold(k, name) {
			return v, false
		}
	}
	if f := b.d.Field(name); f != nil && f.Default != "" {
		return f.Default, false
	}
	if b.job.placeholders {
		return "<" + name + ">", true
	}
	return "", false
}

// sensitive reports a field whose value must not be shown: one the job
// marks secret, one that feeds a PIN key or a PKCS#12 password, or one
// listed in ClearFields.
func (b *planner) sensitive(name string) bool {
	if b.isSecret(name) {
		return true
	}
	s := &b.d.Settings
	for _, v := range []*Value{s.PIN, s.PUK, s.InitialPUK, s.OperatorPIN, s.SignPIN} {
		if v.IsField() && equalFold(v.Text, name) {
			return true
		}
	}
	for _, a := range b.d.Applications {
		if a.P12Password.IsField() && equalFold(a.P12Password.Text, name) {
			return true
		}
	}
	return containsFold(s.ClearFieldNames, name)
}

func (b *planner) isSecret(name string) bool {
	if b.job.Secret[name] {
		return true
	}
	for k, s := range b.job.Secret {
		if s && equalFold(k, name) {
			return true
		}
	}
	return false
}

// str resolves a value to text; placeholder reports a placeholder field.
func (b *planner) str(v *Value) (s string, placeholder bool) {
	if v == nil {
		return "", false
	}
	switch v.Kind {
	case ValueField:
		return b.fieldValue(v.Text)
	case ValueLiteral, ValueWord:
		return v.Text, false
	}
	return "", false
}

// boolean resolves a boolean key; absent or empty is false.
func (b *planner) boolean(v *Value) bool {
	if v == nil || v.Kind == ValueEmpty {
		return false
	}
	s, ph := b.str(v)
	if ph {
		return true
	}
	if v.Kind == ValueField && s == "" {
		return false
	}
	t, ok := parseBool(s)
	if !ok {
		shown := strconv.Quote(s)
		if b.sensitive(v.Text) {
			shown = secret.Masked
		}
		b.fail(ErrInvalidField, v, v.Text, "%s: field %s has %s, want true or false", v.Key, v.Text, shown)
	}
	return t
}

// credential resolves a PIN key; nil when absent. A PIN whose field the
// job left empty is an invalid field.
func (b *planner) credential(v *Value) *Credential {
	return b.secretValue(v, true)
}

// secretValue resolves a PIN-like key; nil when absent, or empty and not
// required (a PKCS#12 password may be empty).
func (b *planner) secretValue(v *Value, required bool) *Credential {
	if v == nil || v.Kind == ValueEmpty {
		return nil
	}
	c := &Credential{Key: v.Key, Pos: v.Pos}
	switch v.Kind {
	case ValueSource:
		src := v.Source
		c.Prompt = &src
	case ValueField:
		s, _ := b.fieldValue(v.Text)
		if s == "" {
			if required {
				// The key asks for a PIN and the job left its field
				// empty: a job error, found before any card I/O, not a
				// description without the key.
				b.fail(ErrInvalidField, v, v.Text, "%s: field %s is empty", v.Key, v.Text)
			}
			return nil
		}
		c.Field, c.Value = v.Text, secret.New(s)
	default:
		c.Value = secret.New(v.Text)
	}
	return c
}

func (b *planner) needP11(st Step) {
	if b.p11 == nil {
		b.p11 = st
	}
}

func (b *planner) add(st Step) Step {
	b.p.Steps = append(b.p.Steps, st)
	return st
}

// header is the header of a step named name caused by v (nil for an
// implicit step).
func header(name string, v *Value) StepHeader {
	h := StepHeader{Name: name}
	if v != nil {
		h.Key, h.Pos = v.Key, v.Pos
	}
	return h
}

func (b *planner) build() {
	d, s, p := b.d, &b.d.Settings, b.p
	p.SkipEject = b.boolean(d.Encoding.SkipEject)
	withATR := b.boolean(s.UseICCSNwithATR)
	chipSerial := b.boolean(s.UseChipSerialAsIccsn)

	// Credentials.
	p.Credentials = Credentials{
		PIN:          b.credential(s.PIN),
		InitialPUK:   b.credential(s.InitialPUK),
		PUK:          b.credential(s.PUK),
		Operator:     b.credential(s.OperatorPIN),
		SignPIN:      b.credential(s.SignPIN),
		SOIsOperator: b.boolean(s.OperatorPinIsSOCredential),
	}
	cr := &p.Credentials

	// 2–3. Selection, or RetrieveAllTokens which ends the job.
	if b.boolean(s.RetrieveAllTokens) {
		b.add(&RetrieveTokensStep{StepHeader: header("RetrieveAllTokens", s.RetrieveAllTokens),
			Retrieve: RetrieveStep{Field: s.AllTokensIccsnsField.Text, WithATR: withATR, UseChipSerial: chipSerial}})
		b.output(s.AllTokensIccsnsField, false)
		b.finish()
		return
	}
	sel := &SelectCardStep{StepHeader: header("SelectCard", s.UseSelectCriteriaIccsn),
		Select: SelectStep{WithATR: withATR, UseChipSerial: chipSerial}}
	if b.boolean(s.UseSelectCriteriaIccsn) {
		iccsn, _ := b.str(s.SelectCriteriaIccsn)
		if iccsn == "" {
			if v := s.SelectCriteriaIccsn; v != nil {
				b.fail(ErrInvalidField, v, v.Text, "SelectCriteriaIccsn: %s is empty but UseSelectCriteriaIccsn is true", v.Raw)
			} else {
				b.fail(ErrInvalidDescription, s.UseSelectCriteriaIccsn, "", "UseSelectCriteriaIccsn is true but there is no SelectCriteriaIccsn")
			}
		}
		sel.Select.ICCSN = iccsn
	}
	b.add(sel)

	// 4. DeleteProfile.
	if b.boolean(s.DeleteProfile) {
		st := &DeleteProfileStep{StepHeader: header("DeleteProfile", s.DeleteProfile)}
		st.Login = LoginHighest
		b.needP11(b.add(st))
	}

	// 5. InitToken.
	initialized := b.boolean(s.InitToken)
	if initialized {
		b.initToken()
	}

	// CMSCardSerialNumber is written right after initialization.
	if v := s.CMSCardSerialNumber; present(v) {
		if serial, _ := b.str(v); serial != "" {
			st := &WriteSerialStep{StepHeader: header("CMSCardSerialNumber", v), Serial: SerialStep{Serial: serial, Field: v.Text}}
			st.Login = LoginSO
			if cr.SO() == nil {
				b.fail(ErrInvalidField, v, "", "CMSCardSerialNumber needs an SO credential to write the serial: InitialPUK, or Operator_Pin with OperatorPinIsSOCredential")
			}
			b.needP11(b.add(st))
		}
	}

	// 6. SetPIN / PUK.
	if b.boolean(s.SetPIN) && !initialized {
		b.setPIN()
	}
	if cr.PUK != nil {
		st := &ChangePUKStep{StepHeader: header("PUK", s.PUK), PIN: PINStep{Mode: PINChangeSO, New: cr.PUK, Old: cr.InitialPUK}}
		st.Login = LoginSO
		if cr.InitialPUK == nil {
			b.fail(ErrInvalidField, s.PUK, "", "PUK: changing the PUK needs the current one in InitialPUK, which has no value")
		}
		b.needP11(b.add(st))
	}

	// 7. Applications.
	block := s.BlockCard
	if !b.boolean(block) {
		block = nil
	}
	for _, a := range b.applicationOrder() {
		if b.application(a) && block == nil && b.boolean(a.BlockCard) {
			block = a.BlockCard
		}
	}

	// APDU script, after the applications, before BlockCard.
	if v := s.ApduFile; present(v) {
		b.script(v)
	}

	// 8. BlockCard.
	if block != nil {
		b.needP11(b.add(&BlockCardStep{StepHeader: header("BlockCard", block)}))
	}

	// 9. Finalization.
	if v := s.ICCSN; v.IsField() {
		st := &ReadICCSNStep{StepHeader: header("ICCSN", v), Finalize: FinalizeStep{Field: v.Text, WithATR: withATR}}
		if w := s.CMSCardSerialNumber; present(w) && !chipSerial {
			st.Finalize.CMSSerial, _ = b.str(w)
		}
		b.add(st)
		b.output(v, false)
	}
	if len(s.PINOutputs) > 0 {
		st := &ReadEncryptedPINsStep{StepHeader: header("CardPinDecryption", s.PINOutputs[0].Value)}
		for _, o := range s.PINOutputs {
			if !b.isSecret(o.Value.Text) {
				b.fail(ErrSecretOutput, o.Value, o.Value.Text, "%s: field %s is not a secret output; decrypted PINs go only to fields the job marks secret", o.Value.Key, o.Value.Text)
			}
			st.PINs.Outputs = append(st.PINs.Outputs, PINReadOutput{Name: o.Name, Field: o.Value.Text})
			b.output(o.Value, true)
		}
		b.add(st)
	}
	b.finish()
}

// finish adds ClearFields and resolves the PKCS#11 module.
func (b *planner) finish() {
	s, p := &b.d.Settings, b.p
	if len(s.ClearFieldNames) > 0 {
		b.add(&ClearFieldsStep{StepHeader: header("ClearFields", s.ClearFields), Clear: ClearStep{Fields: s.ClearFieldNames}})
		p.Clear = s.ClearFieldNames
		outs := p.Outputs[:0]
		for _, o := range p.Outputs {
			if !containsFold(p.Clear, o.Field) {
				outs = append(outs, o)
			}
		}
		p.Outputs = outs
	}
	p.PKCS11 = b.p11 != nil
	if b.p11 != nil && len(s.libraryKeysFound()) > 0 {
		p.Module = s.Library(b.job.Platform)
		if p.Module == nil {
			h := b.p11.Header()
			b.fail(ErrPlatform, &Value{Key: h.Key, Pos: h.Pos}, "", "%s needs a PKCS#11 library, but no key applies to %s (found %s)", h.Name, b.job.Platform, strings.Join(s.libraryKeysFound(), ", "))
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if equalFold(x, s) {
			return true
		}
	}
	return false
}

func (b *planner) output(v *Value, isSecret bool) {
	for _, o := range b.p.Outputs {
		if equalFold(o.Field, v.Text) {
			return
		}
	}
	b.p.Outputs = append(b.p.Outputs, Output{Field: v.Text, Secret: isSecret || b.isSecret(v.Text), Key: v.Key})
}

func (b *planner) initToken() {
	s, cr := &b.d.Settings, &b.p.Credentials
	var init InitStep
	init.Label, _ = b.str(s.InitialLabel)
	if v := s.ChipProfile; present(v) {
		init.Profile = v.Text
		src, err := b.readFile(v)
		if err == nil {
			init.ProfileSource = src
		}
		var assigned []string
		if err == nil && b.job.ProfileAssigns != nil {
			assigned, err = b.job.ProfileAssigns(v.Text, src)
			if err != nil {
				b.fail(ErrInvalidDescription, v, "", "ChipProfile %s: %v", v.Text, err)
			}
		}
		for _, name := range s.ProfileParams {
			val, ph := b.fieldValue(name)
			var dec []byte
			if !ph {
				dec, err = base64.StdEncoding.DecodeString(val)
				if err != nil {
					b.fail(ErrInvalidField, s.ProfileParameters, name, "ProfileParameters: field %s is not base64 (%v)", name, err)
				}
			} else {
				dec = []byte(val)
			}
			if containsFold(assigned, name) {
				b.fail(ErrInvalidDescription, s.ProfileParameters, name, "ProfileParameters: profile %s assigns %s itself; it may not be set from a field", v.Text, name)
			}
			init.Params = append(init.Params, ProfileParam{Name: name, Value: dec})
		}
		b.add(&InitProfileStep{StepHeader: header("InitToken", s.InitToken), Init: init})
		return
	}
	st := &InitTokenStep{StepHeader: header("InitToken", s.InitToken), Init: init}
	if cr.SO() == nil {
		b.fail(ErrInvalidField, s.InitToken, "", "InitToken without ChipProfile runs C_InitToken, which needs the SO PIN: InitialPUK (or Operator_Pin with OperatorPinIsSOCredential) has no value")
	}
	b.needP11(b.add(st))
}

func (b *planner) setPIN() {
	s, cr := &b.d.Settings, &b.p.Credentials
	pin := cr.PIN
	if pin == nil {
		b.fail(ErrInvalidField, s.PIN, "", "SetPIN: PIN has no value")
		return
	}
	st := &SetPINStep{StepHeader: header("SetPIN", s.SetPIN), PIN: PINStep{New: pin}}
	switch {
	case pin.Prompt != nil && pin.Prompt.Dialog == 3 && !pin.Prompt.PinPad:
		st.PIN.Mode = PINChange
		st.Login = LoginUser
	case cr.SO() != nil:
		st.PIN.Mode, st.PIN.SO = PINReset, cr.SO()
		st.Login = LoginSO
	default:
		b.fail(ErrInvalidField, s.SetPIN, "", "SetPIN needs the old PIN (PIN=!FROM_USER_DIALOG_3_FIELD) or an SO credential (InitialPUK, or Operator_Pin with OperatorPinIsSOCredential)")
	}
	b.needP11(b.add(st))
}

// applicationOrder applies ApplicationList, ApplicationListField or file
// order.
func (b *planner) applicationOrder() []*Application {
	s := &b.d.Settings
	var ids []string
	var v *Value
	switch {
	case present(s.ApplicationList):
		v = s.ApplicationList
		ids = SplitApplicationList(v.Text)
	case present(s.ApplicationListField):
		v = s.ApplicationListField
		val, ph := b.fieldValue(v.Text)
		if ph {
			return b.d.Applications
		}
		ids = SplitApplicationList(val)
	default:
		return b.d.Applications
	}
	out := make([]*Application, 0, len(ids))
	for _, id := range ids {
		a := b.d.Application(id)
		if a == nil {
			b.fail(ErrInvalidField, v, v.Text, "%s: no section [Application_%s]", v.Key, id)
			continue
		}
		out = append(out, a)
	}
	return out
}

// application adds the step of one application; it reports whether it
// added one.
func (b *planner) application(a *Application) bool {
	st := &ApplicationStep{StepHeader: StepHeader{Name: "Application_" + a.ID, Key: a.Section, Pos: a.Pos, Login: LoginUser}, App: AppStep{ID: a.ID}}
	app := &st.App
	app.Template, _ = b.str(a.CertTempl)
	app.CardSerial, _ = b.str(a.CardSerialNumber)
	if loc, _ := b.str(a.Location); equalFold(loc, "Signature") {
		app.Signature = true
		st.Login = LoginSignature
	}
	fail := func(v *Value, field, format string, args ...any) {
		b.fail(ErrInvalidField, v, field, "[%s] "+format, append([]any{a.Section}, args...)...)
	}
	payload := func(v *Value) ([]byte, bool) {
		val, ph := b.str(v)
		if ph {
			return []byte(val), false
		}
		if val == "" {
			fail(v, v.Text, "%s: field %s is empty", v.Key, v.Text)
			return nil, false
		}
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(val), ""))
		if err != nil {
			fail(v, v.Text, "%s: field %s is not base64 (%v)", v.Key, v.Text, err)
			return nil, false
		}
		return der, true
	}
	switch {
	case present(a.ObjectCriteria):
		app.Action, app.Criteria = AppUseObject, a.Criteria
	case present(a.KeySize) || present(a.KeyType):
		app.Action = AppGenerateKey
		app.KeyType = "RSA"
		if t, ph := b.str(a.KeyType); t != "" && !ph {
			switch {
			case equalFold(t, "RSA"):
			case equalFold(t, "EC"):
				app.KeyType = "EC"
			default:
				fail(a.KeyType, a.KeyType.Text, "KeyType: %q, want RSA or EC", t)
			}
		}
		app.KeySize = 2048
		if app.KeyType == "EC" {
			app.KeySize = 256
		}
		if n, ph := b.str(a.KeySize); n != "" && !ph {
			size, err := strconv.Atoi(n)
			if err != nil {
				fail(a.KeySize, a.KeySize.Text, "KeySize: %q is not a number", n)
			} else if err := checkKeySize(app.KeyType, size); err != nil {
				fail(a.KeySize, a.KeySize.Text, "%v", err)
			} else {
				app.KeySize = size
			}
		}
	case b.boolean(a.WriteP12Data):
		cert, _ := b.str(a.Certificate)
		if cert == "" && b.boolean(a.KeyArchivalRequest) {
			app.Action = AppKeyArchival
		} else {
			app.Action = AppWriteP12
			if der, ok := payload(a.Certificate); ok {
				if !isDERSequence(der) {
					fail(a.Certificate, a.Certificate.Text, "Certificate: field %s is not a DER PKCS#12", a.Certificate.Text)
				}
				app.P12 = der
			}
		}
		app.P12Password = b.secretValue(a.P12Password, false)
		if app.P12Password == nil && app.Action == AppWriteP12 {
			app.P12Password = &Credential{Key: a.P12Password.Key, Pos: a.P12Password.Pos, Field: a.P12Password.Text}
		}
	case b.boolean(a.KeyArchivalRequest):
		app.Action = AppKeyArchival
	case b.boolean(a.WriteCertificate):
		app.Action = AppWriteCertificate
		if der, ok := payload(a.Certificate); ok {
			if _, err := x509.ParseCertificate(der); err != nil {
				fail(a.Certificate, a.Certificate.Text, "Certificate: field %s is not a DER certificate (%v)", a.Certificate.Text, err)
			}
			app.Certificate = der
		}
	case b.boolean(a.WriteCertKeyList):
		app.Action = AppWriteCertKeyList
		app.CertKeyListMode = "certificates"
		if m, ph := b.str(a.CertKeyListMode); m != "" && !ph {
			app.CertKeyListMode = strings.ToLower(m)
			if app.CertKeyListMode != "certificates" && app.CertKeyListMode != "p12" {
				fail(a.CertKeyListMode, a.CertKeyListMode.Text, "CertKeyListMode: %q, want certificates or p12", m)
			}
		}
		list, ph := b.str(a.CertKeyList)
		if !ph {
			for i, item := range strings.Split(list, ",") {
				item = strings.Join(strings.Fields(item), "")
				if item == "" {
					continue
				}
				der, err := base64.StdEncoding.DecodeString(item)
				if err == nil {
					if app.CertKeyListMode == "p12" {
						if !isDERSequence(der) {
							err = fmt.Errorf("not a DER PKCS#12")
						}
					} else {
						_, err = x509.ParseCertificate(der)
					}
				}
				if err != nil {
					fail(a.CertKeyList, a.CertKeyList.Text, "CertKeyList: item %d of field %s: %v", i+1, a.CertKeyList.Text, err)
					continue
				}
				app.CertKeyList = append(app.CertKeyList, der)
			}
			if len(app.CertKeyList) == 0 {
				fail(a.CertKeyList, a.CertKeyList.Text, "CertKeyList: field %s holds no items", a.CertKeyList.Text)
			}
			if app.CertKeyListMode == "p12" {
				app.P12Password = b.secretValue(a.P12Password, false)
			}
		}
		if v := a.CertKeyListReturn; v.IsField() {
			app.ReturnField = v.Text
			b.output(v, false)
		}
	default:
		return false // every action is switched off by the job's fields
	}
	b.needP11(b.add(st))
	return true
}

// isDERSequence reports whether der is one DER SEQUENCE and nothing else
// (the outer shape of a PKCS#12 PFX, RFC 7292 §4).
func isDERSequence(der []byte) bool {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	return err == nil && len(rest) == 0 && raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagSequence && raw.IsCompound
}

func (b *planner) readFile(v *Value) ([]byte, error) {
	if b.job.Files == nil {
		b.fail(ErrMissingFile, v, "", "%s: file %s is not in the job", v.Key, v.Text)
		return nil, fs.ErrNotExist
	}
	src, err := fs.ReadFile(b.job.Files, v.Text)
	if err != nil {
		b.fail(ErrMissingFile, v, "", "%s: file %s is not in the job", v.Key, v.Text)
		return nil, err
	}
	return src, nil
}

func (b *planner) script(v *Value) {
	s := &b.d.Settings
	src, err := b.readFile(v)
	if err != nil {
		return
	}
	sc, err := ParseScript(v.Text, src)
	if err != nil {
		b.fail(ErrInvalidDescription, v, "", "%s: %v", v.Key, err)
		return
	}
	cmds, err := sc.Resolve(func(field string) (string, bool, bool) {
		f := b.d.Field(field)
		if f == nil {
			return "", false, false
		}
		val, _ := b.fieldValue(f.Name)
		return val, b.sensitive(f.Name), true
	})
	if err != nil {
		if b.job.placeholders {
			cmds = nil
		} else {
			b.fail(ErrInvalidField, v, "", "%s: %v", v.Key, err)
			return
		}
	}
	st := &ApduScriptStep{StepHeader: header("ApduFile", v), Script: ScriptStep{File: v.Text, Commands: cmds}}
	if w := s.ApduResponseCodesField; w.IsField() {
		st.Script.ResponseField = w.Text
		b.output(w, false)
	}
	b.add(st)
}
