package runner

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/dsc"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/secret"
)

// CPF is Profiles over package cpf: the generic ISO 7816 dialect and the
// card models the configuration adds.
type CPF struct {
	Config  cpf.Config        // card model → dialect ([dialects])
	PINCert *x509.Certificate // for PERSINFO_ENCRYPT_SEC() ([pins] encryption_cert)
}

type cpfProfile struct {
	name    string
	prog    *cpf.Program
	pinCert *x509.Certificate
}

// Compile implements Profiles.
func (c CPF) Compile(name string, src []byte) (Profile, error) {
	prog, err := cpf.Compile(name, src, c.Config)
	if err != nil {
		return nil, err
	}
	return &cpfProfile{name: name, prog: prog, pinCert: c.PINCert}, nil
}

// Assigned implements Profile.
func (p *cpfProfile) Assigned() []string { return p.prog.Assigned() }

// PINRules implements Profile: each credential the profile creates from a
// PIN variable takes its minlen and at most what the card's credential
// object holds (iso7816.MaxCredentialLen).
func (p *cpfProfile) PINRules() []PINRule {
	var out []PINRule
	for _, c := range p.prog.Credentials() {
		if c.Value != "" {
			out = append(out, PINRule{Variable: c.Value, Min: max(c.MinLen, 1), Max: iso7816.MaxCredentialLen,
				By: fmt.Sprintf("credential %s (%s:%d)", c.Name, p.name, c.Pos.Line)})
		}
	}
	return out
}

// Prepare implements Profile: colliding parameters, a missing
// PIN-encryption certificate or content that does not fit fail here.
func (p *cpfProfile) Prepare(params []dsc.ProfileParam, pins map[string]secret.Value, standIn bool) (Prepared, error) {
	values := map[string][]byte{}
	for _, pp := range params {
		values[pp.Name] = pp.Value
	}
	if standIn {
		// cpf makes stand-ins as long as the profile's longest minlen.
		stand := map[string]secret.Value{}
		for n := range pins {
			stand[n] = secret.New("00000000")
		}
		pins = stand
	}
	plan, err := p.prog.Prepare(cpf.Params{Values: values, Secrets: pins, PINCert: p.pinCert, StandIn: standIn})
	if err != nil {
		return nil, err
	}
	return cpfPrepared{plan}, nil
}

type cpfPrepared struct{ plan *cpf.Plan }

// Run implements Prepared: the transcript is cpf's, whose entries mask
// secret data fields.
func (p cpfPrepared) Run(ctx context.Context, card iso7816.Card) (ProfileRun, error) {
	res, err := p.plan.Execute(ctx, card)
	var run ProfileRun
	if res != nil {
		run.APDUs = res.APDUs
		for _, e := range res.Transcript {
			run.Transcript = append(run.Transcript, e.String())
		}
	}
	if err != nil {
		return run, err
	}
	run.PersInfo = p.plan.PersInfo
	return run, nil
}

// Erase implements Profiles with cpf.DeleteProfile. A card without an MF has
// nothing to erase. The erase is tried anonymously first and with the
// credential only when the card refuses: the outcome is the one the
// description asks for (log in with the highest credential given), but a
// card whose profile allows an anonymous erase (MakeCardEraseable) never
// loses a PUK try to a credential from another job.
func (c CPF) Erase(ctx context.Context, card iso7816.Card, pin, puk secret.Value) error {
	if _, err := iso7816.Send(card, iso7816.SelectMF()); errors.Is(err, iso7816.ErrFileNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("erasing the card: selecting the MF: %w", err)
	}
	err := cpf.DeleteProfile(ctx, card, nil)
	if login := cpf.LoginFor(pin, puk); login != nil && errors.Is(err, cpf.ErrNotErasable) {
		err = cpf.DeleteProfile(ctx, card, login)
	}
	if errors.Is(err, cpf.ErrNoProfile) {
		return nil
	}
	return err
}
