package memcard

import (
	"bytes"

	"github.com/cardwright/cardwright/iso7816"
)

type kind int

const (
	kindDF kind = iota
	kindTransparent
	kindLinearFixed
)

// Limits of the file system.
const (
	maxTransparentSize = 0x8000 // offsets are 15 bits (§11.3.3)
	maxRecords         = 254    // record numbers 01..FE (§7.3.1)
	fileOverhead       = 16     // bytes of memory every file costs
)

type file struct {
	fid    uint16
	kind   kind
	fdb    byte
	dcb    byte
	name   []byte
	sfi    byte
	lcs    byte
	sec    *iso7816.CompactSecurity
	parent *file

	children []*file // DF

	data []byte // transparent EF

	recSize  int      // linear-fixed EF
	maxRecs  int      // 254 when not bounded by the FCP
	reserved bool     // memory for maxRecs records taken at creation
	records  [][]byte // appended records
}

func (f *file) isDF() bool { return f.kind == kindDF }

// cost is the memory a file takes, its subtree included.
func (f *file) cost() int {
	n := fileOverhead
	switch f.kind {
	case kindDF:
		for _, ch := range f.children {
			n += ch.cost()
		}
	case kindTransparent:
		n += len(f.data)
	case kindLinearFixed:
		if f.reserved {
			n += f.recSize * f.maxRecs
		} else {
			n += f.recSize * len(f.records)
		}
	}
	return n
}

// child returns the child with the given FID.
func (f *file) child(fid uint16) *file {
	for _, ch := range f.children {
		if ch.fid == fid {
			return ch
		}
	}
	return nil
}

func (f *file) childSFI(sfi byte) *file {
	for _, ch := range f.children {
		if !ch.isDF() && ch.sfi == sfi {
			return ch
		}
	}
	return nil
}

// walk calls fn for f and every file under it, depth first.
func (f *file) walk(fn func(*file) bool) bool {
	if !fn(f) {
		return false
	}
	for _, ch := range f.children {
		if !ch.walk(fn) {
			return false
		}
	}
	return true
}

func (f *file) findName(name []byte, prefix bool) *file {
	var found *file
	f.walk(func(g *file) bool {
		if g.isDF() && len(g.name) > 0 && (bytes.Equal(g.name, name) || prefix && bytes.HasPrefix(g.name, name)) {
			found = g
			return false
		}
		return true
	})
	return found
}

func terminatedLCS(lcs byte) bool { return lcs >= iso7816.LCSTerminated && lcs <= 0x0F }

// fcp describes the file as SELECT returns it.
func (f *file) fcp() iso7816.FCP {
	p := iso7816.FCP{FDB: f.fdb, FID: f.fid, LCS: f.lcs, Security: f.sec}
	switch f.kind {
	case kindDF:
		p.DFName = f.name
	case kindTransparent:
		p.Size = len(f.data)
		p.DCB = f.dcb
		p.SFI = f.sfi
	case kindLinearFixed:
		p.DCB = f.dcb
		p.SFI = f.sfi
		p.MaxRecordSize = f.recSize
		p.NumRecords = len(f.records)
		p.Size = f.recSize * len(f.records)
		p.TotalSize = f.recSize * f.maxRecs
	}
	return p
}
