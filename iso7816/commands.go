package iso7816

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Interindustry instruction bytes (ISO/IEC 7816-4 §5.4.2 table 4, and
// ISO/IEC 7816-9 for the file management ones).
const (
	InsDeactivateFile       byte = 0x04 // ISO/IEC 7816-9 §8.4
	InsVerify               byte = 0x20 // ISO/IEC 7816-4 §11.5.6
	InsChangeReferenceData  byte = 0x24 // ISO/IEC 7816-4 §11.5.7
	InsResetRetryCounter    byte = 0x2C // ISO/IEC 7816-4 §11.5.10
	InsActivateFile         byte = 0x44 // ISO/IEC 7816-9 §8.3
	InsGetChallenge         byte = 0x84 // ISO/IEC 7816-4 §11.5.3
	InsSelect               byte = 0xA4 // ISO/IEC 7816-4 §11.2.2
	InsReadBinary           byte = 0xB0 // ISO/IEC 7816-4 §11.3.3
	InsReadRecord           byte = 0xB2 // ISO/IEC 7816-4 §11.4.3
	InsGetResponse          byte = 0xC0 // ISO/IEC 7816-4 §11.7.1
	InsGetData              byte = 0xCA // ISO/IEC 7816-4 §11.4.3 (data objects)
	InsUpdateBinary         byte = 0xD6 // ISO/IEC 7816-4 §11.3.5
	InsPutData              byte = 0xDA // ISO/IEC 7816-4 §11.4.6
	InsUpdateRecord         byte = 0xDC // ISO/IEC 7816-4 §11.4.5
	InsCreateFile           byte = 0xE0 // ISO/IEC 7816-9 §8.1
	InsAppendRecord         byte = 0xE2 // ISO/IEC 7816-4 §11.4.6
	InsDeleteFile           byte = 0xE4 // ISO/IEC 7816-9 §8.2
	InsTerminateDF          byte = 0xE6 // ISO/IEC 7816-9 §8.5
	InsTerminateEF          byte = 0xE8 // ISO/IEC 7816-9 §8.6
	InsTerminateCardUsage   byte = 0xFE // ISO/IEC 7816-9 §8.7
	InsWriteBinary          byte = 0xD0
	InsEraseBinary          byte = 0x0E
	InsManageSecurityEnvmnt byte = 0x22
)

// SELECT P1 (ISO/IEC 7816-4 §11.2.2, table 39).
const (
	SelectByFID      byte = 0x00 // MF, DF or EF by file identifier (data empty or 3F00: MF)
	SelectChildDF    byte = 0x01
	SelectEFUnderDF  byte = 0x02
	SelectParentDF   byte = 0x03
	SelectByDFName   byte = 0x04
	SelectPathFromMF byte = 0x08 // path without the MF's identifier
	SelectPathFromDF byte = 0x09
)

// SELECT P2 b4-b3: what the card returns (ISO/IEC 7816-4 §11.2.2, table 40).
const (
	SelectReturnFCI    byte = 0x00
	SelectReturnFCP    byte = 0x04
	SelectReturnFMD    byte = 0x08
	SelectReturnNoData byte = 0x0C
)

// MFID is the file identifier of the master file.
const MFID uint16 = 0x3F00

func fidBytes(fid uint16) []byte { return []byte{byte(fid >> 8), byte(fid)} }

// Select returns a SELECT command with the given P1 and data, asking for
// the FCP (P2 04, Le 00). Set P2 to SelectReturnNoData and Ne to 0 to get
// no FCP.
func Select(p1 byte, data []byte) Command {
	return Command{INS: InsSelect, P1: p1, P2: SelectReturnFCP, Data: data, Ne: MaxShortNe}
}

// SelectMF selects the master file by its identifier 3F00 (§11.2.2).
func SelectMF() Command { return Select(SelectByFID, fidBytes(MFID)) }

// SelectFID selects a file by its identifier among the children of the
// current DF, the DF itself, its parent and the parent's children (§7.1.1).
func SelectFID(fid uint16) Command { return Select(SelectByFID, fidBytes(fid)) }

// SelectChild selects a child DF of the current DF.
func SelectChild(fid uint16) Command { return Select(SelectChildDF, fidBytes(fid)) }

// SelectEF selects an EF under the current DF.
func SelectEF(fid uint16) Command { return Select(SelectEFUnderDF, fidBytes(fid)) }

// SelectParent selects the parent DF of the current DF.
func SelectParent() Command { return Select(SelectParentDF, nil) }

// SelectAID selects a DF by its name (application identifier), first
// occurrence.
func SelectAID(aid []byte) Command { return Select(SelectByDFName, aid) }

// SelectPath selects by path: from the MF (the MF's 3F00 left out, as
// §7.1.2 requires) or, when fromMF is false, from the current DF.
func SelectPath(fromMF bool, path ...uint16) Command {
	data := make([]byte, 0, 2*len(path))
	for _, fid := range path {
		data = append(data, byte(fid>>8), byte(fid))
	}
	p1 := SelectPathFromDF
	if fromMF {
		p1 = SelectPathFromMF
	}
	return Select(p1, data)
}

// maxOffset15 is the largest offset P1-P2 carries when b8 of P1 is 0.
const maxOffset15 = 0x7FFF

// ReadBinary reads ne bytes of the current EF from offset (§11.3.3); ne
// 256 (Le 00) reads up to the end of the file.
func ReadBinary(offset, ne int) (Command, error) {
	if offset < 0 || offset > maxOffset15 {
		return Command{}, fmt.Errorf("building READ BINARY: offset %d out of range 0..%d", offset, maxOffset15)
	}
	return Command{INS: InsReadBinary, P1: byte(offset >> 8), P2: byte(offset), Ne: ne}, nil
}

// ReadBinarySFI reads the EF with short identifier sfi (1..30) from offset
// 0..255, making it the current EF (§11.3.3, P1 b8 = 1).
func ReadBinarySFI(sfi byte, offset, ne int) (Command, error) {
	if err := checkSFIOffset(sfi, offset); err != nil {
		return Command{}, fmt.Errorf("building READ BINARY: %w", err)
	}
	return Command{INS: InsReadBinary, P1: 0x80 | sfi, P2: byte(offset), Ne: ne}, nil
}

// UpdateBinary writes data into the current EF at offset (§11.3.5).
func UpdateBinary(offset int, data []byte) (Command, error) {
	if offset < 0 || offset > maxOffset15 {
		return Command{}, fmt.Errorf("building UPDATE BINARY: offset %d out of range 0..%d", offset, maxOffset15)
	}
	return Command{INS: InsUpdateBinary, P1: byte(offset >> 8), P2: byte(offset), Data: data}, nil
}

// UpdateBinarySFI writes data into the EF with short identifier sfi.
func UpdateBinarySFI(sfi byte, offset int, data []byte) (Command, error) {
	if err := checkSFIOffset(sfi, offset); err != nil {
		return Command{}, fmt.Errorf("building UPDATE BINARY: %w", err)
	}
	return Command{INS: InsUpdateBinary, P1: 0x80 | sfi, P2: byte(offset), Data: data}, nil
}

func checkSFIOffset(sfi byte, offset int) error {
	if sfi < 1 || sfi > 30 {
		return fmt.Errorf("short EF identifier %d out of range 1..30", sfi)
	}
	if offset < 0 || offset > 0xFF {
		return fmt.Errorf("offset %d out of range 0..255 with a short EF identifier", offset)
	}
	return nil
}

// recordP2 is P2 of the record commands: SFI in b8-b4 (0: current EF) and
// b3-b1 = 100, "record number in P1" (§11.4.3, table 63).
func recordP2(sfi byte) byte { return sfi<<3 | 0x04 }

// ReadRecord reads record number rec (1..254) of the EF with short
// identifier sfi, or of the current EF when sfi is 0 (§11.4.3).
func ReadRecord(sfi, rec byte, ne int) Command {
	return Command{INS: InsReadRecord, P1: rec, P2: recordP2(sfi), Ne: ne}
}

// UpdateRecord replaces record number rec (§11.4.5).
func UpdateRecord(sfi, rec byte, data []byte) Command {
	return Command{INS: InsUpdateRecord, P1: rec, P2: recordP2(sfi), Data: data}
}

// AppendRecord adds a record at the end of a linear EF (§11.4.6; P1 00,
// P2 b3-b1 000).
func AppendRecord(sfi byte, data []byte) Command {
	return Command{INS: InsAppendRecord, P2: sfi << 3, Data: data}
}

// Verify presents reference data (a PIN) for credential ref (§11.5.6).
func Verify(ref byte, pin []byte) Command {
	return Command{INS: InsVerify, P2: ref, Data: pin}
}

// VerifyStatus asks whether credential ref is verified (VERIFY with an
// empty data field): 9000 if so, else 63Cx with the tries left.
func VerifyStatus(ref byte) Command { return Command{INS: InsVerify, P2: ref} }

// ResetSecurityStatus clears the verified state of credential ref (VERIFY
// with P1 FF, ISO/IEC 7816-4:2013 §11.5.6).
func ResetSecurityStatus(ref byte) Command { return Command{INS: InsVerify, P1: 0xFF, P2: ref} }

// ChangeReferenceData replaces credential ref's value: data old || new,
// P1 00 (§11.5.7).
func ChangeReferenceData(ref byte, old, new []byte) Command {
	data := make([]byte, 0, len(old)+len(new))
	data = append(append(data, old...), new...)
	return Command{INS: InsChangeReferenceData, P2: ref, Data: data}
}

// ResetRetryCounter unblocks credential ref with its resetting code puk
// (§11.5.10): P1 00 with data puk || newPIN sets a new value; with newPIN
// nil, P1 01 only resets the counter.
func ResetRetryCounter(ref byte, puk, newPIN []byte) Command {
	if newPIN == nil {
		return Command{INS: InsResetRetryCounter, P1: 0x01, P2: ref, Data: append([]byte(nil), puk...)}
	}
	data := make([]byte, 0, len(puk)+len(newPIN))
	data = append(append(data, puk...), newPIN...)
	return Command{INS: InsResetRetryCounter, P2: ref, Data: data}
}

// CreateFile creates the file described by fcp under the current DF
// (ISO/IEC 7816-9 §8.1, P1-P2 0000, data the FCP template).
func CreateFile(fcp FCP) (Command, error) {
	b, err := fcp.Bytes()
	if err != nil {
		return Command{}, fmt.Errorf("building CREATE FILE: %w", err)
	}
	return Command{INS: InsCreateFile, Data: b}, nil
}

// fileCommand addresses a file as SELECT P1 00 does, or the current file
// when fid is 0.
func fileCommand(ins byte, fid uint16) Command {
	if fid == 0 {
		return Command{INS: ins}
	}
	return Command{INS: ins, Data: fidBytes(fid)}
}

// DeleteFile deletes the file fid (ISO/IEC 7816-9 §8.2), or the current
// file when fid is 0. Deleting the MF erases the card.
func DeleteFile(fid uint16) Command { return fileCommand(InsDeleteFile, fid) }

// ActivateFile moves file fid (0: the current file) to the operational
// activated state (ISO/IEC 7816-9 §8.3). On the MF it ends the card's
// initialization: access rules apply from then on.
func ActivateFile(fid uint16) Command { return fileCommand(InsActivateFile, fid) }

// DeactivateFile moves file fid (0: the current file) to the operational
// deactivated state (ISO/IEC 7816-9 §8.4).
func DeactivateFile(fid uint16) Command { return fileCommand(InsDeactivateFile, fid) }

// TerminateDF moves DF fid (0: the current DF) to the termination state,
// irreversibly (ISO/IEC 7816-9 §8.5).
func TerminateDF(fid uint16) Command { return fileCommand(InsTerminateDF, fid) }

// TerminateEF moves EF fid (0: the current EF) to the termination state
// (ISO/IEC 7816-9 §8.6).
func TerminateEF(fid uint16) Command { return fileCommand(InsTerminateEF, fid) }

// TerminateCardUsage ends the card's life, irreversibly (ISO/IEC 7816-9
// §8.7).
func TerminateCardUsage() Command { return Command{INS: InsTerminateCardUsage} }

// GetData reads the data object with the given tag (§11.4.3; P1-P2 the
// tag, e.g. 005A for the card serial number).
func GetData(tag uint16, ne int) Command {
	return Command{INS: InsGetData, P1: byte(tag >> 8), P2: byte(tag), Ne: ne}
}

// TagSerialNumber is the application primary account number tag 5A, which
// GET DATA reads as the card serial number.
const TagSerialNumber uint16 = 0x005A

// PutData writes the data object with the given P1-P2 (§11.4.6).
func PutData(p1p2 uint16, data []byte) Command {
	return Command{INS: InsPutData, P1: byte(p1p2 >> 8), P2: byte(p1p2), Data: data}
}

// GetChallenge asks for n random bytes (§11.5.3).
func GetChallenge(n int) Command { return Command{INS: InsGetChallenge, Ne: n} }

// GetResponse fetches ne bytes of a response announced by 61xx (§11.7.1).
func GetResponse(ne int) Command { return Command{INS: InsGetResponse, Ne: ne} }

// Credential is a credential object of the project's own card and of the
// generic card dialect: PUT DATA with P1 01 and P2 the credential reference
// creates it before the card is operational (docs/vcard.md).
type Credential struct {
	Ref        byte   // e.g. 0x81; conditions name it as SCUser(Ref)
	Value      []byte // tag 80: the PIN or PUK bytes
	RetryLimit byte   // tag 91
	UnblockRef byte   // tag 92, 0: none
	MinLen     byte   // tag 93, 0: not given
}

// Credential data object tags inside PUT DATA P1 01.
const (
	TagCredValue      byte = 0x80
	TagCredRetryLimit byte = 0x91
	TagCredUnblockRef byte = 0x92
	TagCredMinLen     byte = 0x93
)

// MaxCredentialLen is the longest credential value PutCredential encodes
// (a one-byte BER length in tag 80).
const MaxCredentialLen = 127

// PutCredential builds the PUT DATA command that creates c. The command's
// data holds the secret: transcripts mask it.
func PutCredential(c Credential) (Command, error) {
	if len(c.Value) == 0 || len(c.Value) > MaxCredentialLen {
		return Command{}, fmt.Errorf("building PUT DATA credential %02X: value of %d bytes, want 1..%d", c.Ref, len(c.Value), MaxCredentialLen)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(asn1.Tag(TagCredValue), func(b *cryptobyte.Builder) { b.AddBytes(c.Value) })
	b.AddASN1(asn1.Tag(TagCredRetryLimit), func(b *cryptobyte.Builder) { b.AddUint8(c.RetryLimit) })
	if c.UnblockRef != 0 {
		b.AddASN1(asn1.Tag(TagCredUnblockRef), func(b *cryptobyte.Builder) { b.AddUint8(c.UnblockRef) })
	}
	if c.MinLen != 0 {
		b.AddASN1(asn1.Tag(TagCredMinLen), func(b *cryptobyte.Builder) { b.AddUint8(c.MinLen) })
	}
	data, err := b.Bytes()
	if err != nil {
		return Command{}, fmt.Errorf("building PUT DATA credential %02X: %w", c.Ref, err)
	}
	return Command{INS: InsPutData, P1: 0x01, P2: c.Ref, Data: data}, nil
}
