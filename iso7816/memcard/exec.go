package memcard

import (
	"bytes"
	"crypto/subtle"
	"io"
	"slices"

	"github.com/cardwright/cardwright/iso7816"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Status words the card uses beyond those named in iso7816.
const (
	swOK          = iso7816.SWOK
	swBytesRemain = 0x6100
	swWrongLe     = 0x6C00
)

// apdu is one command as the handlers see it: the whole data of a chain,
// Ne, and whether Le asked for "everything available" (Le 00 or 0000).
type apdu struct {
	iso7816.Command
	neMax bool
}

// reply is a handler's answer.
type reply struct {
	data []byte
	sw   uint16
}

func sw(s uint16) reply { return reply{sw: s} }

// process runs one raw command APDU. Called with c.mu held.
func (c *Card) process(raw []byte) []byte {
	if c.terminated {
		return reply{sw: iso7816.SWConditionsNotSatisfied}.bytes()
	}
	cmd, err := iso7816.ParseCommand(raw)
	if err != nil {
		c.chain, c.pending = nil, nil
		return sw(iso7816.SWWrongLength).bytes()
	}
	extended := len(raw) > 5 && raw[4] == 0
	if extended && !c.cfg.Extended || len(cmd.Data) > c.maxNc {
		c.chain, c.pending = nil, nil
		return sw(iso7816.SWWrongLength).bytes()
	}
	// CLA (§5.4.1): interindustry only, basic channel, no secure messaging.
	switch {
	case cmd.CLA&0x80 != 0 || cmd.CLA&0xE0 == 0x20:
		return sw(iso7816.SWCLANotSupported).bytes()
	case cmd.CLA&0x40 != 0: // further interindustry: channels 4..19
		return sw(iso7816.SWLogicalChannelNotSupp).bytes()
	case cmd.CLA&0x03 != 0:
		return sw(iso7816.SWLogicalChannelNotSupp).bytes()
	case cmd.CLA&0x0C != 0:
		return sw(iso7816.SWSecureMessagingNotSupp).bytes()
	}
	a := apdu{Command: cmd, neMax: cmd.Ne == iso7816.MaxExtendedNe || cmd.Ne == iso7816.MaxShortNe && !extended}

	if cmd.INS == iso7816.InsGetResponse && cmd.CLA&0x10 == 0 {
		return c.getResponse(a).bytes()
	}
	c.pending = nil

	// Command chaining (§5.3.3).
	if cmd.CLA&0x10 != 0 {
		if c.cfg.NoChaining {
			c.chain = nil
			return sw(iso7816.SWChainingNotSupported).bytes()
		}
		if c.chain != nil && (c.chain.ins != cmd.INS || c.chain.p1 != cmd.P1 || c.chain.p2 != cmd.P2) {
			c.chain = nil
			return sw(iso7816.SWLastCommandExpected).bytes()
		}
		if c.chain == nil {
			c.chain = &chain{ins: cmd.INS, p1: cmd.P1, p2: cmd.P2}
		}
		if len(c.chain.data)+len(cmd.Data) > maxChain {
			c.chain = nil
			return sw(iso7816.SWWrongLength).bytes()
		}
		c.chain.data = append(c.chain.data, cmd.Data...)
		return sw(swOK).bytes()
	}
	if ch := c.chain; ch != nil {
		c.chain = nil
		if ch.ins != cmd.INS || ch.p1 != cmd.P1 || ch.p2 != cmd.P2 {
			return sw(iso7816.SWLastCommandExpected).bytes()
		}
		if len(ch.data)+len(cmd.Data) > maxChain {
			return sw(iso7816.SWWrongLength).bytes()
		}
		a.Data = append(ch.data, cmd.Data...)
	}

	r := c.dispatch(&a)
	return c.split(r).bytes()
}

// split holds back what does not fit in one response for GET RESPONSE.
func (c *Card) split(r reply) reply {
	if r.sw != swOK || len(r.data) == 0 {
		return r
	}
	n := c.maxNe
	if c.cfg.AlwaysGetResponse {
		n = 0
	}
	if len(r.data) <= n {
		return r
	}
	c.pending = r.data[n:]
	return reply{data: r.data[:n], sw: swBytesRemain | uint16(min(len(c.pending), 256)&0xFF)}
}

// getResponse returns pending data (§11.7.1).
func (c *Card) getResponse(a apdu) reply {
	if a.P1 != 0 || a.P2 != 0 {
		c.pending = nil
		return sw(iso7816.SWIncorrectP1P2)
	}
	if len(c.pending) == 0 {
		return sw(iso7816.SWConditionsNotSatisfied)
	}
	if a.Ne == 0 {
		return sw(iso7816.SWWrongLength)
	}
	n := min(a.Ne, len(c.pending), c.maxNe)
	out := c.pending[:n]
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
		return reply{data: out, sw: swOK}
	}
	return reply{data: out, sw: swBytesRemain | uint16(min(len(c.pending), 256)&0xFF)}
}

func (r reply) bytes() []byte {
	out := make([]byte, 0, len(r.data)+2)
	out = append(out, r.data...)
	return append(out, byte(r.sw>>8), byte(r.sw))
}

func (c *Card) dispatch(a *apdu) reply {
	switch a.INS {
	case iso7816.InsSelect:
		return c.selectFile(a)
	case iso7816.InsReadBinary:
		return c.readBinary(a)
	case iso7816.InsUpdateBinary:
		return c.updateBinary(a)
	case iso7816.InsReadRecord:
		return c.readRecord(a)
	case iso7816.InsUpdateRecord:
		return c.updateRecord(a)
	case iso7816.InsAppendRecord:
		return c.appendRecord(a)
	case iso7816.InsCreateFile:
		return c.createFile(a)
	case iso7816.InsDeleteFile:
		return c.deleteFile(a)
	case iso7816.InsActivateFile, iso7816.InsDeactivateFile, iso7816.InsTerminateDF, iso7816.InsTerminateEF:
		return c.lifeCycle(a)
	case iso7816.InsTerminateCardUsage:
		return c.terminateCard(a)
	case iso7816.InsVerify:
		return c.verify(a)
	case iso7816.InsChangeReferenceData:
		return c.changeReferenceData(a)
	case iso7816.InsResetRetryCounter:
		return c.resetRetryCounter(a)
	case iso7816.InsPutData:
		return c.putData(a)
	case iso7816.InsGetData:
		return c.getData(a)
	case iso7816.InsGetChallenge:
		return c.getChallenge(a)
	}
	return sw(iso7816.SWINSNotSupported)
}

// object answers with a whole data object: none without Le, 6Cxx when Le
// asks for fewer bytes than the object has (§5.3.4).
func object(a *apdu, data []byte, s uint16) reply {
	switch {
	case a.Ne == 0:
		return reply{sw: s}
	case !a.neMax && a.Ne < len(data):
		if len(data) > iso7816.MaxShortNe {
			return reply{data: data[:a.Ne], sw: s}
		}
		return sw(swWrongLe | uint16(len(data)&0xFF))
	}
	return reply{data: data, sw: s}
}

// --- life cycle and access rules ---

func (c *Card) operational() bool {
	return c.mf != nil && (c.mf.lcs == iso7816.LCSOperationalActivated ||
		c.mf.lcs == iso7816.LCSOperationalDeactivated || terminatedLCS(c.mf.lcs))
}

// enforced reports whether f's access rules apply: the card is
// operational and f has left its creation/initialization state.
func (c *Card) enforced(f *file) bool {
	return c.operational() && (f.lcs == iso7816.LCSOperationalActivated ||
		f.lcs == iso7816.LCSOperationalDeactivated || terminatedLCS(f.lcs))
}

// allowed checks the compact security condition of one access mode.
func (c *Card) allowed(f *file, am byte) bool {
	if !c.enforced(f) || f.sec == nil {
		return true
	}
	sc := f.sec.Condition(am)
	switch {
	case sc == iso7816.SCAlways:
		return true
	case sc&0x70 == 0x10: // user authentication only (b8 any/all is moot)
		n := sc & 0x0F
		if n == 0 || n == 0x0F {
			return false
		}
		cr := c.creds[0x80|n]
		return cr != nil && cr.verified
	}
	return false // never, or a condition this card does not support
}

// usable reports whether f and its ancestors are neither deactivated nor
// terminated (only the ancestors when self is false).
func usable(f *file, self bool) bool {
	if !self {
		f = f.parent
	}
	for ; f != nil; f = f.parent {
		if f.lcs == iso7816.LCSOperationalDeactivated || terminatedLCS(f.lcs) {
			return false
		}
	}
	return true
}

// --- selection ---

// resolve finds the file that SELECT P1 and its data name (§11.2.2).
func (c *Card) resolve(p1 byte, data []byte) (*file, uint16) {
	if c.mf == nil {
		return nil, iso7816.SWFileNotFound
	}
	fidAt := func(i int) uint16 { return uint16(data[i])<<8 | uint16(data[i+1]) }
	cur := c.curDF
	switch p1 {
	case iso7816.SelectByFID:
		if len(data) == 0 {
			return c.mf, swOK
		}
		if len(data) != 2 {
			return nil, iso7816.SWWrongData
		}
		fid := fidAt(0)
		if fid == iso7816.MFID {
			return c.mf, swOK
		}
		// Unique among the current DF's children, the DF, its parent and
		// the parent's children (§7.1.1).
		if f := cur.child(fid); f != nil {
			return f, swOK
		}
		if cur.fid == fid {
			return cur, swOK
		}
		if p := cur.parent; p != nil {
			if p.fid == fid {
				return p, swOK
			}
			if f := p.child(fid); f != nil {
				return f, swOK
			}
		}
		return nil, iso7816.SWFileNotFound
	case iso7816.SelectChildDF, iso7816.SelectEFUnderDF:
		if len(data) != 2 {
			return nil, iso7816.SWWrongData
		}
		f := cur.child(fidAt(0))
		if f == nil || f.isDF() != (p1 == iso7816.SelectChildDF) {
			return nil, iso7816.SWFileNotFound
		}
		return f, swOK
	case iso7816.SelectParentDF:
		if len(data) != 0 {
			return nil, iso7816.SWWrongData
		}
		if cur.parent == nil {
			return nil, iso7816.SWFileNotFound
		}
		return cur.parent, swOK
	case iso7816.SelectByDFName:
		if len(data) == 0 || len(data) > 16 {
			return nil, iso7816.SWWrongData
		}
		if f := c.mf.findName(data, false); f != nil {
			return f, swOK
		}
		if f := c.mf.findName(data, true); f != nil {
			return f, swOK
		}
		return nil, iso7816.SWFileNotFound
	case iso7816.SelectPathFromMF, iso7816.SelectPathFromDF:
		if len(data) == 0 || len(data)%2 != 0 {
			return nil, iso7816.SWWrongData
		}
		f := cur
		if p1 == iso7816.SelectPathFromMF {
			f = c.mf
			if fidAt(0) == iso7816.MFID {
				data = data[2:]
			}
		}
		for i := 0; i < len(data); i += 2 {
			if !f.isDF() {
				return nil, iso7816.SWFileNotFound
			}
			if f = f.child(fidAt(i)); f == nil {
				return nil, iso7816.SWFileNotFound
			}
		}
		return f, swOK
	}
	return nil, iso7816.SWIncorrectP1P2
}

func (c *Card) makeCurrent(f *file) {
	if f.isDF() {
		c.curDF, c.curEF = f, nil
	} else {
		c.curDF, c.curEF = f.parent, f
	}
}

func (c *Card) selectFile(a *apdu) reply {
	if a.P2&0xF3 != 0 { // b2-b1: first or only occurrence
		return sw(iso7816.SWIncorrectP1P2)
	}
	f, s := c.resolve(a.P1, a.Data)
	if s != swOK {
		return sw(s)
	}
	c.makeCurrent(f)
	status := swOK
	switch {
	case f.lcs == iso7816.LCSOperationalDeactivated:
		status = iso7816.SWSelectedFileDeactivated
	case terminatedLCS(f.lcs):
		status = iso7816.SWSelectedFileTerminated
	}
	fcp := f.fcp()
	var data []byte
	switch a.P2 & 0x0C {
	case iso7816.SelectReturnFCI:
		data, _ = fcp.FCIBytes()
	case iso7816.SelectReturnFCP:
		data, _ = fcp.Bytes()
	case iso7816.SelectReturnFMD:
		data = []byte{0x64, 0x00}
	case iso7816.SelectReturnNoData:
		return sw(status)
	}
	return object(a, data, status)
}

// --- transparent EFs ---

// binaryTarget finds the EF of READ/UPDATE BINARY (§11.3.2): SFI in P1 when
// b8 is set (offset in P2), else the current EF (offset in P1-P2).
func (c *Card) binaryTarget(a *apdu) (*file, int, uint16) {
	if a.P1&0x80 != 0 {
		if a.P1&0x60 != 0 {
			return nil, 0, iso7816.SWIncorrectP1P2
		}
		sfi := a.P1 & 0x1F
		if c.mf == nil || sfi == 0 || sfi == 31 {
			return nil, 0, iso7816.SWFileNotFound
		}
		f := c.curDF.childSFI(sfi)
		if f == nil {
			return nil, 0, iso7816.SWFileNotFound
		}
		c.makeCurrent(f)
		return c.checkTransparent(f, int(a.P2))
	}
	if c.curEF == nil {
		return nil, 0, iso7816.SWCommandNotAllowedNoEF
	}
	return c.checkTransparent(c.curEF, int(a.P1)<<8|int(a.P2))
}

func (c *Card) checkTransparent(f *file, off int) (*file, int, uint16) {
	if f.kind != kindTransparent {
		return nil, 0, iso7816.SWCommandIncompatible
	}
	if !usable(f, true) {
		return nil, 0, iso7816.SWConditionsNotSatisfied
	}
	return f, off, swOK
}

func (c *Card) readBinary(a *apdu) reply {
	f, off, s := c.binaryTarget(a)
	if s != swOK {
		return sw(s)
	}
	if !c.allowed(f, iso7816.AMRead) {
		return sw(iso7816.SWSecurityStatus)
	}
	if len(a.Data) != 0 {
		return sw(iso7816.SWWrongLength) // odd-INS offset objects are not supported
	}
	if off > len(f.data) || off == len(f.data) && off > 0 {
		return sw(iso7816.SWWrongP1P2)
	}
	if a.Ne == 0 {
		return sw(iso7816.SWWrongLength)
	}
	avail := len(f.data) - off
	if a.Ne > avail {
		data := slices.Clone(f.data[off:])
		if a.neMax {
			return reply{data: data, sw: swOK}
		}
		return reply{data: data, sw: iso7816.SWEndOfFile}
	}
	return reply{data: slices.Clone(f.data[off : off+a.Ne]), sw: swOK}
}

func (c *Card) updateBinary(a *apdu) reply {
	f, off, s := c.binaryTarget(a)
	if s != swOK {
		return sw(s)
	}
	if !c.allowed(f, iso7816.AMUpdate) {
		return sw(iso7816.SWSecurityStatus)
	}
	switch {
	case len(a.Data) == 0:
		return sw(iso7816.SWWrongLength)
	case off > len(f.data):
		return sw(iso7816.SWWrongP1P2)
	case off+len(a.Data) > len(f.data):
		return sw(iso7816.SWNotEnoughMemory)
	}
	copy(f.data[off:], a.Data)
	return sw(swOK)
}

// --- record EFs ---

// recordTarget finds the EF of a record command: SFI in P2 b8-b4, 0 for
// the current EF (§11.4.2).
func (c *Card) recordTarget(sfi byte) (*file, uint16) {
	var f *file
	switch {
	case sfi == 0:
		if c.curEF == nil {
			return nil, iso7816.SWCommandNotAllowedNoEF
		}
		f = c.curEF
	case sfi == 31 || c.mf == nil:
		return nil, iso7816.SWFileNotFound
	default:
		if f = c.curDF.childSFI(sfi); f == nil {
			return nil, iso7816.SWFileNotFound
		}
		c.makeCurrent(f)
	}
	if f.kind != kindLinearFixed {
		return nil, iso7816.SWCommandIncompatible
	}
	if !usable(f, true) {
		return nil, iso7816.SWConditionsNotSatisfied
	}
	return f, swOK
}

// recordNumber checks P1/P2 of READ and UPDATE RECORD: only "record number
// in P1" (P2 b3-b1 = 100) is supported.
func recordNumber(a *apdu) (int, uint16) {
	if a.P2&0x07 != 0x04 || a.P1 == 0 || a.P1 == 0xFF {
		return 0, iso7816.SWIncorrectP1P2
	}
	return int(a.P1), swOK
}

func (c *Card) readRecord(a *apdu) reply {
	n, s := recordNumber(a)
	if s != swOK {
		return sw(s)
	}
	f, s := c.recordTarget(a.P2 >> 3)
	if s != swOK {
		return sw(s)
	}
	if !c.allowed(f, iso7816.AMRead) {
		return sw(iso7816.SWSecurityStatus)
	}
	if n > len(f.records) {
		return sw(iso7816.SWRecordNotFound)
	}
	if a.Ne == 0 {
		return sw(iso7816.SWWrongLength)
	}
	return object(a, slices.Clone(f.records[n-1]), swOK)
}

func (c *Card) updateRecord(a *apdu) reply {
	n, s := recordNumber(a)
	if s != swOK {
		return sw(s)
	}
	f, s := c.recordTarget(a.P2 >> 3)
	if s != swOK {
		return sw(s)
	}
	if !c.allowed(f, iso7816.AMUpdate) {
		return sw(iso7816.SWSecurityStatus)
	}
	if len(a.Data) != f.recSize {
		return sw(iso7816.SWWrongLength)
	}
	if n > len(f.records) {
		return sw(iso7816.SWRecordNotFound)
	}
	copy(f.records[n-1], a.Data)
	return sw(swOK)
}

func (c *Card) appendRecord(a *apdu) reply {
	if a.P1 != 0 || a.P2&0x07 != 0 {
		return sw(iso7816.SWIncorrectP1P2)
	}
	f, s := c.recordTarget(a.P2 >> 3)
	if s != swOK {
		return sw(s)
	}
	if !c.allowed(f, iso7816.AMWrite) {
		return sw(iso7816.SWSecurityStatus)
	}
	if len(a.Data) != f.recSize {
		return sw(iso7816.SWWrongLength)
	}
	if len(f.records) >= f.maxRecs || !f.reserved && c.used+f.recSize > c.memory {
		return sw(iso7816.SWNotEnoughMemory)
	}
	if !f.reserved {
		c.used += f.recSize
	}
	f.records = append(f.records, slices.Clone(a.Data))
	return sw(swOK)
}

// --- file management (ISO/IEC 7816-9) ---

func (c *Card) createFile(a *apdu) reply {
	if a.P1 != 0 || a.P2 != 0 {
		return sw(iso7816.SWIncorrectP1P2)
	}
	p, err := iso7816.ParseFCP(a.Data)
	if err != nil {
		return sw(iso7816.SWWrongData)
	}
	f := &file{fid: p.FID, fdb: p.FDB, dcb: p.DCB, sfi: p.SFI, lcs: p.LCS, sec: p.Security}
	switch p.FDB &^ iso7816.FDBShareable {
	case iso7816.FDBDF:
		f.kind = kindDF
		f.name = slices.Clone(p.DFName)
	case iso7816.FDBTransparent:
		f.kind = kindTransparent
	case iso7816.FDBLinearFixed:
		f.kind = kindLinearFixed
	default:
		return sw(iso7816.SWWrongData)
	}
	if f.fid == 0 || f.fid == 0xFFFF || f.fid == 0x3FFF {
		return sw(iso7816.SWWrongData)
	}
	if f.sec != nil && f.sec.AM&0x80 != 0 {
		return sw(iso7816.SWWrongData) // only the compact format of §7.5.3
	}
	if f.isDF() && f.sfi != 0 || !f.isDF() && len(p.DFName) > 0 || f.sfi == 31 {
		return sw(iso7816.SWWrongData)
	}
	switch f.lcs {
	case 0:
		f.lcs = iso7816.LCSOperationalActivated
		if f.fid == iso7816.MFID {
			f.lcs = iso7816.LCSCreation
		}
	case iso7816.LCSCreation, iso7816.LCSInitialization, iso7816.LCSOperationalActivated:
	default:
		return sw(iso7816.SWWrongData)
	}

	// Where it goes.
	parent := c.curDF
	if c.mf == nil {
		if f.fid != iso7816.MFID {
			return sw(iso7816.SWFileNotFound) // the first file must be the MF
		}
		if !f.isDF() {
			return sw(iso7816.SWWrongData)
		}
	} else {
		if f.fid == iso7816.MFID {
			return sw(iso7816.SWFileExists)
		}
		if !usable(parent, true) {
			return sw(iso7816.SWConditionsNotSatisfied)
		}
		am := iso7816.AMCreateEF
		if f.isDF() {
			am = iso7816.AMCreateDF
		}
		if !c.allowed(parent, am) {
			return sw(iso7816.SWSecurityStatus)
		}
		if parent.child(f.fid) != nil || parent.fid == f.fid {
			return sw(iso7816.SWFileExists)
		}
		if f.sfi != 0 && parent.childSFI(f.sfi) != nil {
			return sw(iso7816.SWFileExists)
		}
		if len(f.name) > 0 && c.mf.findName(f.name, false) != nil {
			return sw(iso7816.SWDFNameExists)
		}
	}

	// Size.
	switch f.kind {
	case kindTransparent:
		size := p.Size
		if size == 0 {
			size = p.TotalSize
		}
		if size > maxTransparentSize {
			return sw(iso7816.SWNotEnoughMemory)
		}
		f.data = make([]byte, size)
	case kindLinearFixed:
		f.recSize = p.MaxRecordSize
		if f.recSize == 0 {
			return sw(iso7816.SWWrongData)
		}
		switch {
		case p.NumRecords > 0:
			f.maxRecs, f.reserved = p.NumRecords, true
		case p.Size > 0:
			f.maxRecs, f.reserved = p.Size/f.recSize, true
		default:
			f.maxRecs = maxRecords
		}
		if f.maxRecs == 0 || f.maxRecs > maxRecords {
			return sw(iso7816.SWWrongData)
		}
	}
	if c.used+f.cost() > c.memory {
		return sw(iso7816.SWNotEnoughMemory)
	}
	c.used += f.cost()
	if c.mf == nil {
		c.mf = f
	} else {
		f.parent = parent
		parent.children = append(parent.children, f)
	}
	c.makeCurrent(f)
	return sw(swOK)
}

// target finds the file of DELETE/ACTIVATE/DEACTIVATE/TERMINATE: named as
// SELECT names it, or the current file when P1 is 00 and the data empty.
func (c *Card) target(a *apdu) (*file, uint16) {
	if a.P2 != 0 {
		return nil, iso7816.SWIncorrectP1P2
	}
	if c.mf == nil {
		return nil, iso7816.SWFileNotFound
	}
	if a.P1 == 0 && len(a.Data) == 0 {
		switch a.INS {
		case iso7816.InsTerminateDF:
			return c.curDF, swOK
		case iso7816.InsTerminateEF:
			if c.curEF == nil {
				return nil, iso7816.SWCommandNotAllowedNoEF
			}
		}
		if c.curEF != nil {
			return c.curEF, swOK
		}
		return c.curDF, swOK
	}
	return c.resolve(a.P1, a.Data)
}

func (c *Card) deleteFile(a *apdu) reply {
	f, s := c.target(a)
	if s != swOK {
		return sw(s)
	}
	if !usable(f, false) {
		return sw(iso7816.SWConditionsNotSatisfied)
	}
	if !c.allowed(f, iso7816.AMDelete) || f.parent != nil && !c.allowed(f.parent, iso7816.AMDeleteChild) {
		return sw(iso7816.SWSecurityStatus)
	}
	if f == c.mf { // erase the card back to virgin
		c.mf, c.curDF, c.curEF = nil, nil, nil
		clear(c.creds)
		c.used = 0
		return sw(swOK)
	}
	p := f.parent
	p.children = slices.DeleteFunc(p.children, func(g *file) bool { return g == f })
	c.used -= f.cost()
	f.parent = nil
	c.curDF, c.curEF = p, nil
	return sw(swOK)
}

func (c *Card) lifeCycle(a *apdu) reply {
	f, s := c.target(a)
	if s != swOK {
		return sw(s)
	}
	switch {
	case a.INS == iso7816.InsTerminateDF && !f.isDF(), a.INS == iso7816.InsTerminateEF && f.isDF():
		return sw(iso7816.SWCommandIncompatible)
	case !usable(f, false) || terminatedLCS(f.lcs):
		return sw(iso7816.SWConditionsNotSatisfied)
	}
	am := map[byte]byte{
		iso7816.InsActivateFile:   iso7816.AMActivate,
		iso7816.InsDeactivateFile: iso7816.AMDeactivate,
		iso7816.InsTerminateDF:    iso7816.AMTerminate,
		iso7816.InsTerminateEF:    iso7816.AMTerminate,
	}[a.INS]
	if !c.allowed(f, am) {
		return sw(iso7816.SWSecurityStatus)
	}
	switch a.INS {
	case iso7816.InsActivateFile:
		f.lcs = iso7816.LCSOperationalActivated
	case iso7816.InsDeactivateFile:
		if f.lcs != iso7816.LCSOperationalActivated && f.lcs != iso7816.LCSOperationalDeactivated {
			return sw(iso7816.SWConditionsNotSatisfied)
		}
		f.lcs = iso7816.LCSOperationalDeactivated
	default:
		f.lcs = iso7816.LCSTerminated
	}
	return sw(swOK)
}

func (c *Card) terminateCard(a *apdu) reply {
	if a.P1 != 0 || a.P2 != 0 {
		return sw(iso7816.SWIncorrectP1P2)
	}
	if len(a.Data) != 0 {
		return sw(iso7816.SWWrongLength)
	}
	if c.mf != nil && !c.allowed(c.mf, iso7816.AMTerminate) {
		return sw(iso7816.SWSecurityStatus)
	}
	c.terminated = true
	return sw(swOK)
}

// --- data objects ---

func (c *Card) getData(a *apdu) reply {
	if uint16(a.P1)<<8|uint16(a.P2) != iso7816.TagSerialNumber {
		return sw(iso7816.SWReferencedDataNotFound)
	}
	return object(a, slices.Clone(c.serial), swOK)
}

func (c *Card) getChallenge(a *apdu) reply {
	if a.P1 != 0 || a.P2 != 0 {
		return sw(iso7816.SWIncorrectP1P2)
	}
	if len(a.Data) != 0 || a.Ne == 0 {
		return sw(iso7816.SWWrongLength)
	}
	b := make([]byte, a.Ne)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return sw(iso7816.SWUnknown)
	}
	return reply{data: b, sw: swOK}
}

func (c *Card) putData(a *apdu) reply {
	if a.P1 != 0x01 {
		return sw(iso7816.SWReferencedDataNotFound)
	}
	if c.operational() {
		return sw(iso7816.SWConditionsNotSatisfied)
	}
	if a.P2 == 0 || a.P2 == 0xFF {
		return sw(iso7816.SWIncorrectP1P2)
	}
	cr, ok := parseCredential(a.Data)
	if !ok {
		return sw(iso7816.SWWrongData)
	}
	cr.ref = a.P2
	c.creds[a.P2] = cr
	return sw(swOK)
}

// parseCredential reads the PUT DATA credential object: 80 value, 91 retry
// limit, 92 unblocking reference, 93 minimum length.
func parseCredential(b []byte) (*credential, bool) {
	s := cryptobyte.String(b)
	cr := &credential{}
	seen := map[asn1.Tag]bool{}
	for !s.Empty() {
		var v cryptobyte.String
		var tag asn1.Tag
		if !s.ReadAnyASN1(&v, &tag) || seen[tag] {
			return nil, false
		}
		seen[tag] = true
		switch byte(tag) {
		case iso7816.TagCredValue:
			if len(v) == 0 || len(v) > maxCredLen {
				return nil, false
			}
			cr.value = bytes.Clone(v)
		case iso7816.TagCredRetryLimit, iso7816.TagCredUnblockRef, iso7816.TagCredMinLen:
			if len(v) != 1 {
				return nil, false
			}
			switch byte(tag) {
			case iso7816.TagCredRetryLimit:
				cr.limit = int(v[0])
			case iso7816.TagCredUnblockRef:
				cr.unblock = v[0]
			case iso7816.TagCredMinLen:
				cr.minLen = int(v[0])
			}
		default:
			return nil, false
		}
	}
	if cr.value == nil || cr.limit < 1 || cr.limit > 15 || cr.minLen > len(cr.value) {
		return nil, false
	}
	cr.tries = cr.limit
	return cr, true
}

// --- credentials (ISO/IEC 7816-4 §11.5) ---

// maxCredLen is the longest credential value the card stores.
const maxCredLen = 64

type credential struct {
	ref      byte
	value    []byte
	limit    int
	tries    int
	unblock  byte
	minLen   int
	verified bool
}

func (cr *credential) retries() uint16 { return 0x63C0 | uint16(cr.tries&0x0F) }

// check compares v with the value and counts a wrong one down.
func (cr *credential) check(v []byte) bool {
	if len(v) == len(cr.value) && subtle.ConstantTimeCompare(v, cr.value) == 1 {
		cr.tries = cr.limit
		return true
	}
	cr.tries = max(cr.tries-1, 0)
	cr.verified = false
	return false
}

func (cr *credential) validNew(v []byte) bool {
	return len(v) >= max(cr.minLen, 1) && len(v) <= maxCredLen
}

func (c *Card) verify(a *apdu) reply {
	cr := c.creds[a.P2]
	switch {
	case a.P1 != 0 && a.P1 != 0xFF:
		return sw(iso7816.SWIncorrectP1P2)
	case cr == nil:
		return sw(iso7816.SWReferencedDataNotFound)
	case a.P1 == 0xFF: // reset the verification status
		if len(a.Data) != 0 {
			return sw(iso7816.SWWrongLength)
		}
		cr.verified = false
		return sw(swOK)
	case cr.tries == 0:
		return sw(iso7816.SWAuthMethodBlocked)
	case len(a.Data) == 0:
		if cr.verified {
			return sw(swOK)
		}
		return sw(cr.retries())
	case cr.check(a.Data):
		cr.verified = true
		return sw(swOK)
	}
	return sw(cr.retries())
}

func (c *Card) changeReferenceData(a *apdu) reply {
	cr := c.creds[a.P2]
	switch {
	case a.P1 != 0 && a.P1 != 1:
		return sw(iso7816.SWIncorrectP1P2)
	case cr == nil:
		return sw(iso7816.SWReferencedDataNotFound)
	case cr.tries == 0:
		return sw(iso7816.SWAuthMethodBlocked)
	}
	newV := a.Data
	if a.P1 == 1 { // new value only, after a VERIFY
		if !cr.verified {
			return sw(iso7816.SWSecurityStatus)
		}
	} else {
		n := min(len(cr.value), len(a.Data))
		if !cr.check(a.Data[:n]) {
			return sw(cr.retries())
		}
		newV = a.Data[n:]
	}
	if !cr.validNew(newV) {
		return sw(iso7816.SWWrongData)
	}
	cr.value = bytes.Clone(newV)
	cr.tries, cr.verified = cr.limit, true
	return sw(swOK)
}

func (c *Card) resetRetryCounter(a *apdu) reply {
	cr := c.creds[a.P2]
	switch {
	case a.P1 != 0 && a.P1 != 1:
		return sw(iso7816.SWIncorrectP1P2)
	case cr == nil:
		return sw(iso7816.SWReferencedDataNotFound)
	}
	puk := c.creds[cr.unblock]
	switch {
	case cr.unblock == 0 || puk == nil:
		return sw(iso7816.SWReferenceDataNotUsable)
	case puk.tries == 0:
		return sw(iso7816.SWAuthMethodBlocked)
	}
	code, newV := a.Data, []byte(nil)
	if a.P1 == 0 {
		n := min(len(puk.value), len(a.Data))
		code, newV = a.Data[:n], a.Data[n:]
	}
	if !puk.check(code) {
		return sw(puk.retries())
	}
	if a.P1 == 0 {
		if !cr.validNew(newV) {
			return sw(iso7816.SWWrongData)
		}
		cr.value = bytes.Clone(newV)
	}
	cr.tries, cr.verified = cr.limit, false
	return sw(swOK)
}
