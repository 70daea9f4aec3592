package memcard_test

import (
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// personalised builds a card as an encoding job would: MF whose DELETE
// needs the PUK and whose CREATE EF needs the PIN, a PIN (81, 3 tries,
// unblocked by 82) and a PUK (82, 2 tries), an EF 2F01 readable by
// everyone and updatable with the PIN, an EF 2F02 readable with the PIN and
// never updatable, then ACTIVATE FILE on the MF.
func personalised(t *testing.T) *tcard {
	c := newCard(t, memcard.Config{})
	mfSec := &iso7816.CompactSecurity{}
	mfSec.Set(iso7816.AMDelete, iso7816.SCUser(0x82))
	mfSec.Set(iso7816.AMCreateEF, iso7816.SCUser(0x81))
	mfSec.Set(iso7816.AMCreateDF, iso7816.SCNever)
	mfSec.Set(iso7816.AMDeleteChild, iso7816.SCUser(0x81))
	c.create(iso7816.SWOK, mf(mfSec))
	c.cred(iso7816.SWOK, pinCr)
	c.cred(iso7816.SWOK, pukCr)
	pub := &iso7816.CompactSecurity{}
	pub.Set(iso7816.AMUpdate, iso7816.SCUser(0x81))
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F01, FDB: iso7816.FDBTransparent, Size: 8, SFI: 1, Security: pub})
	priv := &iso7816.CompactSecurity{}
	priv.Set(iso7816.AMRead, iso7816.SCUser(0x81))
	priv.Set(iso7816.AMUpdate, iso7816.SCNever)
	priv.Set(iso7816.AMDelete, iso7816.SCNever)
	c.ok(iso7816.SelectMF())
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F02, FDB: iso7816.FDBTransparent, Size: 8, SFI: 2, Security: priv})
	// Before the fuse is burnt every rule is waived: write the "never" file.
	c.ok(must(iso7816.UpdateBinary(0, []byte("private!"))))
	if c.card.Operational() {
		t.Fatal("operational before ACTIVATE FILE")
	}
	c.ok(iso7816.ActivateFile(iso7816.MFID))
	if !c.card.Operational() {
		t.Fatal("not operational after ACTIVATE FILE on the MF")
	}
	p, _ := iso7816.ParseFCP(c.ok(iso7816.SelectMF()))
	if p.LCS != iso7816.LCSOperationalActivated {
		t.Errorf("MF LCS %02X after ACTIVATE, want 05", p.LCS)
	}
	return c
}

func TestAccessRules(t *testing.T) {
	c := personalised(t)
	c.ok(must(iso7816.ReadBinarySFI(1, 0, 8)))
	c.want(iso7816.SWSecurityStatus, must(iso7816.UpdateBinarySFI(1, 0, []byte{1})))
	c.want(iso7816.SWSecurityStatus, must(iso7816.ReadBinarySFI(2, 0, 8)))
	c.want(iso7816.SWSecurityStatus, must(iso7816.UpdateBinarySFI(2, 0, []byte{1})))
	c.ok(iso7816.SelectMF())
	c.create(iso7816.SWSecurityStatus, iso7816.FCP{FID: 0x2F03, FDB: iso7816.FDBTransparent, Size: 1})
	c.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(0x2F01))

	c.ok(iso7816.Verify(0x81, pin))
	c.ok(must(iso7816.UpdateBinarySFI(1, 0, []byte{1})))
	if got := c.ok(must(iso7816.ReadBinarySFI(2, 0, 8))); string(got) != "private!" {
		t.Errorf("private EF = %q", got)
	}
	c.want(iso7816.SWSecurityStatus, must(iso7816.UpdateBinarySFI(2, 0, []byte{1}))) // never
	c.ok(iso7816.SelectMF())
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F03, FDB: iso7816.FDBTransparent, Size: 1})
	c.ok(iso7816.SelectMF())
	c.create(iso7816.SWSecurityStatus, iso7816.FCP{FID: 0x5000, FDB: iso7816.FDBDF}) // CREATE DF never
	c.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(0x2F02))                     // the EF's own DELETE: never
	c.ok(iso7816.DeleteFile(0x2F03))

	// VERIFY P1 FF forgets the PIN; so does a reset.
	c.ok(iso7816.ResetSecurityStatus(0x81))
	c.want(iso7816.SWSecurityStatus, must(iso7816.ReadBinarySFI(2, 0, 8)))
	c.ok(iso7816.Verify(0x81, pin))
	c.card.Reset()
	c.ok(iso7816.SelectMF())
	c.want(iso7816.SWSecurityStatus, must(iso7816.ReadBinarySFI(2, 0, 8)))

	// No credentials can be added once operational.
	c.cred(iso7816.SWConditionsNotSatisfied, iso7816.Credential{Ref: 0x83, Value: []byte("1111"), RetryLimit: 3})
}

// A file created in the initialization state keeps its rules waived until
// it is activated itself.
func TestAccessRulesFollowFileLCS(t *testing.T) {
	c := newCard(t, memcard.Config{})
	c.create(iso7816.SWOK, mf(nil))
	never := &iso7816.CompactSecurity{}
	never.Set(iso7816.AMRead, iso7816.SCNever)
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F01, FDB: iso7816.FDBTransparent, Size: 1, Security: never, LCS: iso7816.LCSInitialization})
	c.ok(iso7816.ActivateFile(iso7816.MFID))
	c.ok(iso7816.SelectFID(0x2F01))
	c.ok(must(iso7816.ReadBinary(0, 1)))
	c.ok(iso7816.ActivateFile(0))
	c.want(iso7816.SWSecurityStatus, must(iso7816.ReadBinary(0, 1)))
}

func TestPINCounters(t *testing.T) {
	c := personalised(t)
	wrong := []byte("000000")
	c.want(0x63C3, iso7816.VerifyStatus(0x81))
	c.want(0x63C2, iso7816.Verify(0x81, wrong))
	c.want(0x63C1, iso7816.Verify(0x81, wrong))
	// The right PIN resets the counter.
	c.ok(iso7816.Verify(0x81, pin))
	c.ok(iso7816.VerifyStatus(0x81))
	if n, _ := c.card.Tries(0x81); n != 3 {
		t.Errorf("tries after a good VERIFY = %d", n)
	}
	// A wrong PIN also drops the verified state.
	c.want(0x63C2, iso7816.Verify(0x81, wrong))
	c.want(0x63C2, iso7816.VerifyStatus(0x81))
	c.want(0x63C1, iso7816.Verify(0x81, []byte("48291"))) // wrong length counts too
	c.want(0x63C0, iso7816.Verify(0x81, wrong))
	c.want(iso7816.SWAuthMethodBlocked, iso7816.Verify(0x81, pin))
	c.want(iso7816.SWAuthMethodBlocked, iso7816.VerifyStatus(0x81))
	c.want(iso7816.SWAuthMethodBlocked, iso7816.ChangeReferenceData(0x81, pin, pin2))
	if n, _ := c.card.Tries(0x81); n != 0 {
		t.Errorf("tries when blocked = %d", n)
	}
	_, err := iso7816.Send(c.card, iso7816.Verify(0x81, pin))
	if err == nil || err.Error() == "" {
		t.Fatal("blocked VERIFY gave no error")
	}

	// Wrong PUK: the PUK's own counter goes down, the PIN stays blocked.
	c.want(0x63C1, iso7816.ResetRetryCounter(0x81, []byte("00000000"), pin2))
	if n, _ := c.card.Tries(0x82); n != 1 {
		t.Errorf("PUK tries after a wrong PUK = %d, want 1", n)
	}
	if n, _ := c.card.Tries(0x81); n != 0 {
		t.Errorf("PIN tries after a wrong PUK = %d, want 0", n)
	}
	// Right PUK with a new PIN: PIN unblocked with its full counter, PUK counter restored.
	c.ok(iso7816.ResetRetryCounter(0x81, puk, pin2))
	if n, _ := c.card.Tries(0x82); n != 2 {
		t.Errorf("PUK tries after the right PUK = %d, want 2", n)
	}
	c.want(0x63C3, iso7816.VerifyStatus(0x81))
	c.want(0x63C2, iso7816.Verify(0x81, pin)) // the old PIN is gone
	c.ok(iso7816.Verify(0x81, pin2))

	// P1 01: reset the counter only, PIN unchanged.
	c.want(0x63C2, iso7816.Verify(0x81, wrong))
	c.ok(iso7816.ResetRetryCounter(0x81, puk, nil))
	if n, _ := c.card.Tries(0x81); n != 3 {
		t.Errorf("tries after RESET RETRY COUNTER P1 01 = %d", n)
	}
	c.ok(iso7816.Verify(0x81, pin2))

	// New PIN shorter than the minimum length: refused, nothing changed.
	c.want(iso7816.SWWrongData, iso7816.ResetRetryCounter(0x81, puk, []byte("123")))
	c.ok(iso7816.Verify(0x81, pin2))

	// PUK blocked after its two tries.
	c.want(0x63C1, iso7816.ResetRetryCounter(0x81, []byte("11111111"), nil))
	c.want(0x63C0, iso7816.ResetRetryCounter(0x81, []byte("11111111"), nil))
	c.want(iso7816.SWAuthMethodBlocked, iso7816.ResetRetryCounter(0x81, puk, nil))

	// Unknown references, a credential without an unblocking one.
	c.want(iso7816.SWReferencedDataNotFound, iso7816.Verify(0x85, pin))
	c.want(iso7816.SWReferencedDataNotFound, iso7816.ResetRetryCounter(0x85, puk, nil))
	c.want(iso7816.SWReferenceDataNotUsable, iso7816.ResetRetryCounter(0x82, puk, nil))
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsVerify, P1: 0x01, P2: 0x81, Data: pin})
}

func TestChangeReferenceData(t *testing.T) {
	c := personalised(t)
	c.want(0x63C2, iso7816.ChangeReferenceData(0x81, []byte("000000"), pin2))
	c.ok(iso7816.ChangeReferenceData(0x81, pin, pin2))
	if n, _ := c.card.Tries(0x81); n != 3 {
		t.Errorf("tries after CHANGE = %d", n)
	}
	c.want(0x63C2, iso7816.Verify(0x81, pin))
	c.ok(iso7816.Verify(0x81, pin2))
	// New value too short (min length 4) or empty.
	c.want(iso7816.SWWrongData, iso7816.ChangeReferenceData(0x81, pin2, []byte("12")))
	c.want(iso7816.SWWrongData, iso7816.ChangeReferenceData(0x81, pin2, nil))
	c.ok(iso7816.Verify(0x81, pin2))
	// P1 01: new value only, after VERIFY.
	c.ok(iso7816.Command{INS: iso7816.InsChangeReferenceData, P1: 0x01, P2: 0x81, Data: pin})
	c.ok(iso7816.Verify(0x81, pin))
	c.ok(iso7816.ResetSecurityStatus(0x81))
	c.want(iso7816.SWSecurityStatus, iso7816.Command{INS: iso7816.InsChangeReferenceData, P1: 0x01, P2: 0x81, Data: pin2})
}

func TestPutCredential(t *testing.T) {
	c := newCard(t, memcard.Config{})
	c.create(iso7816.SWOK, mf(nil))
	bad := []iso7816.Command{
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x02, '1', '2'}},                                // no retry limit
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x91, 0x01, 0x03}},                                    // no value
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x91, 0x01, 0x00}},                   // limit 0
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x91, 0x01, 0x10}},                   // limit 16
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x91, 0x01, 0x03, 0x93, 0x01, 0x02}}, // min length above the value
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x91, 0x01, 0x03, 0x94, 0x01, 0x02}}, // unknown tag
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x91, 0x02, 0x00, 0x03}},             // two-byte limit
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x01, '1', 0x80, 0x01, '2', 0x91, 0x01, 3}},     // value twice
		{INS: iso7816.InsPutData, P1: 0x01, P2: 0x81, Data: []byte{0x80, 0x05, '1'}},                                     // truncated
	}
	for _, cmd := range bad {
		c.want(iso7816.SWWrongData, cmd)
	}
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsPutData, P1: 0x01, P2: 0x00, Data: []byte{0x80, 0x01, '1', 0x91, 0x01, 0x03}})
	c.want(iso7816.SWReferencedDataNotFound, iso7816.Command{INS: iso7816.InsPutData, P1: 0x00, P2: 0x5A, Data: []byte{1}})
	c.want(iso7816.SWReferencedDataNotFound, iso7816.VerifyStatus(0x81))
	// Replacing a credential before the card is operational is allowed.
	c.cred(iso7816.SWOK, iso7816.Credential{Ref: 0x81, Value: []byte("1111"), RetryLimit: 5})
	c.cred(iso7816.SWOK, pinCr)
	c.want(0x63C3, iso7816.VerifyStatus(0x81))
	c.ok(iso7816.Verify(0x81, pin))
	// A credential can be created on a virgin card (no MF) too.
	v := newCard(t, memcard.Config{})
	v.cred(iso7816.SWOK, pinCr)
	v.ok(iso7816.Verify(0x81, pin))
}

func TestLifeCycle(t *testing.T) {
	c := personalised(t)
	c.ok(iso7816.Verify(0x81, pin))
	// DEACTIVATE an EF: SELECT warns 6283, reads are refused; ACTIVATE undoes it.
	c.ok(iso7816.DeactivateFile(0x2F01))
	c.want(iso7816.SWSelectedFileDeactivated, iso7816.SelectFID(0x2F01))
	c.want(iso7816.SWConditionsNotSatisfied, must(iso7816.ReadBinary(0, 1)))
	p, err := iso7816.ParseFCP(c.want(iso7816.SWSelectedFileDeactivated, iso7816.SelectFID(0x2F01)))
	if err != nil || p.LCS != iso7816.LCSOperationalDeactivated {
		t.Errorf("FCP of a deactivated EF: %+v, %v", p, err)
	}
	c.ok(iso7816.DeactivateFile(0)) // idempotent
	c.ok(iso7816.ActivateFile(0))
	c.ok(must(iso7816.ReadBinary(0, 1)))

	// TERMINATE EF: final.
	c.ok(iso7816.TerminateEF(0x2F01))
	c.want(iso7816.SWSelectedFileTerminated, iso7816.SelectFID(0x2F01))
	c.want(iso7816.SWConditionsNotSatisfied, must(iso7816.ReadBinary(0, 1)))
	c.want(iso7816.SWConditionsNotSatisfied, iso7816.ActivateFile(0))
	c.want(iso7816.SWCommandIncompatible, iso7816.TerminateDF(0x2F02))
	c.ok(iso7816.SelectMF())
	c.want(iso7816.SWCommandIncompatible, iso7816.TerminateEF(iso7816.MFID))

	// Access rules on life cycle commands: 2F02 forbids nothing but
	// DELETE/UPDATE; a rule on DEACTIVATE is checked.
	c.ok(iso7816.SelectMF())
	sec := &iso7816.CompactSecurity{}
	sec.Set(iso7816.AMDeactivate, iso7816.SCNever)
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F04, FDB: iso7816.FDBTransparent, Size: 1, Security: sec})
	c.want(iso7816.SWSecurityStatus, iso7816.DeactivateFile(0))

	// TERMINATE DF on the MF: everything under it becomes unusable.
	c.ok(iso7816.TerminateDF(iso7816.MFID))
	c.want(iso7816.SWSelectedFileTerminated, iso7816.SelectMF())
	c.want(iso7816.SWConditionsNotSatisfied, must(iso7816.ReadBinarySFI(2, 0, 1)))
	c.create(iso7816.SWConditionsNotSatisfied, iso7816.FCP{FID: 0x2F05, FDB: iso7816.FDBTransparent, Size: 1})
}

func TestTerminateCardUsage(t *testing.T) {
	c := personalised(t)
	c.want(iso7816.SWWrongLength, iso7816.Command{INS: iso7816.InsTerminateCardUsage, Data: []byte{1}})
	c.ok(iso7816.TerminateCardUsage())
	for _, cmd := range []iso7816.Command{iso7816.SelectMF(), iso7816.GetChallenge(8), iso7816.VerifyStatus(0x81), iso7816.DeleteFile(iso7816.MFID)} {
		c.want(iso7816.SWConditionsNotSatisfied, cmd)
	}
	// TERMINATE CARD USAGE honours the MF's TERMINATE rule.
	d := newCard(t, memcard.Config{})
	sec := &iso7816.CompactSecurity{}
	sec.Set(iso7816.AMTerminate, iso7816.SCUser(0x81))
	d.create(iso7816.SWOK, mf(sec))
	d.cred(iso7816.SWOK, pinCr)
	d.ok(iso7816.ActivateFile(iso7816.MFID))
	d.want(iso7816.SWSecurityStatus, iso7816.TerminateCardUsage())
	d.ok(iso7816.Verify(0x81, pin))
	d.ok(iso7816.TerminateCardUsage())
}

func TestDeleteMF(t *testing.T) {
	c := personalised(t)
	// The MF's DELETE rule needs the PUK (82).
	c.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(iso7816.MFID))
	c.ok(iso7816.SelectMF())
	c.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(0))
	c.ok(iso7816.Verify(0x81, pin))
	c.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(iso7816.MFID))
	c.ok(iso7816.Verify(0x82, puk))
	c.ok(iso7816.DeleteFile(iso7816.MFID))
	// Virgin again: no files, no credentials, not operational.
	c.want(iso7816.SWFileNotFound, iso7816.SelectMF())
	c.want(iso7816.SWReferencedDataNotFound, iso7816.VerifyStatus(0x81))
	if c.card.Operational() {
		t.Error("operational after erase")
	}
	if _, ok := c.card.Tries(0x81); ok {
		t.Error("PIN survived the erase")
	}
	// And can be personalised again, with all the memory back.
	c.create(iso7816.SWOK, mf(nil))
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F01, FDB: iso7816.FDBTransparent, Size: 0x8000})
	c.cred(iso7816.SWOK, pinCr)

	// Before the card is operational DELETE of the MF with no data works
	// when the MF is selected, whatever its rule.
	d := newCard(t, memcard.Config{})
	sec := &iso7816.CompactSecurity{}
	sec.Set(iso7816.AMDelete, iso7816.SCNever)
	d.create(iso7816.SWOK, mf(sec))
	d.ok(iso7816.DeleteFile(0))
	d.want(iso7816.SWFileNotFound, iso7816.SelectMF())
	// Once operational, "never" is final.
	d.create(iso7816.SWOK, mf(sec))
	d.ok(iso7816.ActivateFile(0))
	d.want(iso7816.SWSecurityStatus, iso7816.DeleteFile(iso7816.MFID))
	d.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsDeleteFile, P2: 0x01})
}

func TestDeleteFile(t *testing.T) {
	c := newCard(t, memcard.Config{})
	tree(c)
	c.ok(iso7816.SelectMF())
	c.ok(iso7816.DeleteFile(0x5000)) // a DF with its children
	c.want(iso7816.SWFileNotFound, iso7816.SelectAID(aid))
	c.want(iso7816.SWFileNotFound, iso7816.SelectPath(true, 0x5000, 0x5001))
	// Deleting the current EF leaves its DF current.
	c.ok(iso7816.SelectFID(0x2F00))
	c.ok(iso7816.DeleteFile(0))
	c.want(iso7816.SWCommandNotAllowedNoEF, must(iso7816.ReadBinary(0, 1)))
	c.want(iso7816.SWFileNotFound, iso7816.SelectFID(0x2F00))
	c.want(iso7816.SWFileNotFound, iso7816.DeleteFile(0x2F00))
	// The FID and the DF name are free again.
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5000, FDB: iso7816.FDBDF, DFName: aid})
}
