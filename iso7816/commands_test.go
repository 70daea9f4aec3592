package iso7816_test

import (
	"testing"

	"github.com/cardwright/cardwright/iso7816"
)

func TestCommandBuilders(t *testing.T) {
	ok := func(c iso7816.Command, err error) iso7816.Command {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fcp, _ := iso7816.CreateFile(iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF})
	cred, _ := iso7816.PutCredential(iso7816.Credential{Ref: 0x81, Value: []byte("1234"), RetryLimit: 3, UnblockRef: 0x82, MinLen: 4})
	credShort, _ := iso7816.PutCredential(iso7816.Credential{Ref: 0x82, Value: []byte{1}, RetryLimit: 10})
	tests := []struct {
		name string
		cmd  iso7816.Command
		want string
	}{
		{"SelectMF", iso7816.SelectMF(), "00A40004023F0000"},
		{"SelectFID", iso7816.SelectFID(0x2F01), "00A40004022F0100"},
		{"SelectChild", iso7816.SelectChild(0x5000), "00A4010402500000"},
		{"SelectEF", iso7816.SelectEF(0x5001), "00A4020402500100"},
		{"SelectParent", iso7816.SelectParent(), "00A4030400"},
		{"SelectAID", iso7816.SelectAID([]byte{0xA0, 0x00, 0x01}), "00A4040403A0000100"},
		{"SelectPath from MF", iso7816.SelectPath(true, 0x5000, 0x5001), "00A408040450005001" + "00"},
		{"SelectPath from DF", iso7816.SelectPath(false, 0x5001), "00A40904025001" + "00"},
		{"ReadBinary", ok(iso7816.ReadBinary(0x7FFF, 256)), "00B07FFF00"},
		{"ReadBinarySFI", ok(iso7816.ReadBinarySFI(30, 255, 4)), "00B09EFF04"},
		{"UpdateBinary", ok(iso7816.UpdateBinary(0x0102, []byte{0xAA})), "00D6010201AA"},
		{"UpdateBinarySFI", ok(iso7816.UpdateBinarySFI(1, 2, []byte{0xAA})), "00D6810201AA"},
		{"ReadRecord", iso7816.ReadRecord(2, 3, 256), "00B2031400"},
		{"ReadRecord current", iso7816.ReadRecord(0, 1, 4), "00B2010404"},
		{"UpdateRecord", iso7816.UpdateRecord(2, 1, []byte{1, 2}), "00DC0114020102"},
		{"AppendRecord", iso7816.AppendRecord(2, []byte{1}), "00E200100101"},
		{"Verify", iso7816.Verify(0x81, []byte("12")), "00200081023132"},
		{"VerifyStatus", iso7816.VerifyStatus(0x81), "00200081"},
		{"ResetSecurityStatus", iso7816.ResetSecurityStatus(0x81), "0020FF81"},
		{"ChangeReferenceData", iso7816.ChangeReferenceData(0x81, []byte("1"), []byte("2")), "00240081023132"},
		{"ResetRetryCounter new PIN", iso7816.ResetRetryCounter(0x81, []byte("9"), []byte("2")), "002C0081023932"},
		{"ResetRetryCounter only", iso7816.ResetRetryCounter(0x81, []byte("9"), nil), "002C01810139"},
		{"CreateFile", fcp, "00E00000096207820138830" + "23F00"},
		{"DeleteFile", iso7816.DeleteFile(0x2F01), "00E40000022F01"},
		{"DeleteFile current", iso7816.DeleteFile(0), "00E40000"},
		{"ActivateFile", iso7816.ActivateFile(iso7816.MFID), "00440000023F00"},
		{"DeactivateFile", iso7816.DeactivateFile(0), "00040000"},
		{"TerminateDF", iso7816.TerminateDF(0x5000), "00E6000002" + "5000"},
		{"TerminateEF", iso7816.TerminateEF(0), "00E80000"},
		{"TerminateCardUsage", iso7816.TerminateCardUsage(), "00FE0000"},
		{"GetData", iso7816.GetData(iso7816.TagSerialNumber, 256), "00CA005A00"},
		{"PutData", iso7816.PutData(0x0101, []byte{1}), "00DA01010101"},
		{"GetChallenge", iso7816.GetChallenge(8), "0084000008"},
		{"GetResponse", iso7816.GetResponse(16), "00C0000010"},
		{"PutCredential", cred, "00DA01810F" + "800431323334" + "910103" + "920182" + "930104"},
		{"PutCredential minimal", credShort, "00DA018206" + "800101" + "91010A"},
	}
	for _, tt := range tests {
		got, err := tt.cmd.Bytes()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if want := unhex(t, tt.want); string(got) != string(want) {
			t.Errorf("%s = %X, want %X", tt.name, got, want)
		}
	}
}

func TestCommandBuilderErrors(t *testing.T) {
	errs := []error{}
	_, err := iso7816.ReadBinary(0x8000, 1)
	errs = append(errs, err)
	_, err = iso7816.ReadBinary(-1, 1)
	errs = append(errs, err)
	_, err = iso7816.UpdateBinary(0x8000, []byte{1})
	errs = append(errs, err)
	_, err = iso7816.ReadBinarySFI(0, 0, 1)
	errs = append(errs, err)
	_, err = iso7816.ReadBinarySFI(31, 0, 1)
	errs = append(errs, err)
	_, err = iso7816.UpdateBinarySFI(1, 256, []byte{1})
	errs = append(errs, err)
	_, err = iso7816.PutCredential(iso7816.Credential{Ref: 0x81, RetryLimit: 3})
	errs = append(errs, err)
	_, err = iso7816.PutCredential(iso7816.Credential{Ref: 0x81, Value: make([]byte, 128), RetryLimit: 3})
	errs = append(errs, err)
	_, err = iso7816.CreateFile(iso7816.FCP{Size: -1})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
