package memcard_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// tcard runs commands on a card through iso7816.Exchange and checks
// status words.
type tcard struct {
	t    *testing.T
	card *memcard.Card
}

func newCard(t *testing.T, cfg memcard.Config) *tcard {
	return &tcard{t: t, card: memcard.New(cfg)}
}

func (c *tcard) run(cmd iso7816.Command) ([]byte, uint16) {
	c.t.Helper()
	r, err := iso7816.Exchange(c.card, cmd, c.card.Limits())
	if err != nil {
		c.t.Fatalf("%02X %02X%02X: %v", cmd.INS, cmd.P1, cmd.P2, err)
	}
	return r.Data, r.SW
}

// want runs cmd and fails unless the status word is sw.
func (c *tcard) want(sw uint16, cmd iso7816.Command) []byte {
	c.t.Helper()
	data, got := c.run(cmd)
	if got != sw {
		c.t.Fatalf("%02X%02X%02X%02X (%d data bytes): SW %04X (%s), want %04X (%s)",
			cmd.CLA, cmd.INS, cmd.P1, cmd.P2, len(cmd.Data), got, iso7816.SWMeaning(got), sw, iso7816.SWMeaning(sw))
	}
	return data
}

func (c *tcard) ok(cmd iso7816.Command) []byte {
	c.t.Helper()
	return c.want(iso7816.SWOK, cmd)
}

func (c *tcard) create(sw uint16, f iso7816.FCP) {
	c.t.Helper()
	cmd, err := iso7816.CreateFile(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.want(sw, cmd)
}

func (c *tcard) cred(sw uint16, cr iso7816.Credential) {
	c.t.Helper()
	cmd, err := iso7816.PutCredential(cr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.want(sw, cmd)
}

// must unwraps a command builder's result; the tests build only valid
// commands.
func must(c iso7816.Command, err error) iso7816.Command {
	if err != nil {
		panic(err)
	}
	return c
}

func mf(sec *iso7816.CompactSecurity) iso7816.FCP {
	return iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF, Security: sec}
}

var (
	aid   = []byte{0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01}
	pin   = []byte("482915")
	puk   = []byte("73920184")
	pin2  = []byte("551177")
	pinCr = iso7816.Credential{Ref: 0x81, Value: pin, RetryLimit: 3, UnblockRef: 0x82, MinLen: 4}
	pukCr = iso7816.Credential{Ref: 0x82, Value: puk, RetryLimit: 2}
)

// tree builds MF / DF 5000 (aid) / { EF 5001 transparent SFI 1, EF 5002
// records SFI 2 } and EF 2F00 under the MF.
func tree(c *tcard) {
	c.t.Helper()
	c.create(iso7816.SWOK, mf(nil))
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x2F00, FDB: iso7816.FDBTransparent, Size: 16})
	c.ok(iso7816.SelectMF())
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5000, FDB: iso7816.FDBDF, DFName: aid})
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5001, FDB: iso7816.FDBTransparent, Size: 32, SFI: 1})
	// Creating the EF made it current; the current DF is still 5000.
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5002, FDB: iso7816.FDBLinearFixed, MaxRecordSize: 4, NumRecords: 3, SFI: 2})
}

func TestVirginCard(t *testing.T) {
	c := newCard(t, memcard.Config{})
	c.want(iso7816.SWFileNotFound, iso7816.SelectMF())
	c.want(iso7816.SWFileNotFound, iso7816.SelectAID(aid))
	c.want(iso7816.SWCommandNotAllowedNoEF, must(iso7816.ReadBinary(0, 1)))
	c.want(iso7816.SWFileNotFound, must(iso7816.ReadBinarySFI(1, 0, 1)))
	// The first file must be the MF, and a DF.
	c.create(iso7816.SWFileNotFound, iso7816.FCP{FID: 0x5000, FDB: iso7816.FDBDF})
	c.create(iso7816.SWWrongData, iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBTransparent, Size: 4})
	c.create(iso7816.SWOK, mf(nil))
	c.create(iso7816.SWFileExists, mf(nil))
	p, err := iso7816.ParseFCP(c.ok(iso7816.SelectMF()))
	if err != nil || p.FID != 0x3F00 || !p.IsDF() || p.LCS != iso7816.LCSCreation {
		t.Errorf("MF FCP %+v, %v; want DF 3F00 in creation state", p, err)
	}
	if c.card.Operational() {
		t.Error("card operational before ACTIVATE")
	}
}

func TestSelect(t *testing.T) {
	c := newCard(t, memcard.Config{})
	tree(c)
	fid := func(data []byte) uint16 {
		t.Helper()
		p, err := iso7816.ParseFCP(data)
		if err != nil {
			t.Fatalf("FCP %X: %v", data, err)
		}
		return p.FID
	}
	tests := []struct {
		name string
		pre  []iso7816.Command
		cmd  iso7816.Command
		want uint16 // FID, or 0 for 6A82
	}{
		{"MF by FID", nil, iso7816.SelectFID(0x3F00), 0x3F00},
		{"MF with empty data", nil, iso7816.Select(iso7816.SelectByFID, nil), 0x3F00},
		{"child DF by FID", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectFID(0x5000), 0x5000},
		{"EF of the MF", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectFID(0x2F00), 0x2F00},
		{"sibling of the current DF", []iso7816.Command{iso7816.SelectPath(true, 0x5000)}, iso7816.SelectFID(0x2F00), 0x2F00},
		{"parent by FID", []iso7816.Command{iso7816.SelectPath(true, 0x5000)}, iso7816.SelectFID(0x3F00), 0x3F00},
		{"grandchild not reachable by FID", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectFID(0x5001), 0},
		{"child DF (P1 01)", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectChild(0x5000), 0x5000},
		{"P1 01 refuses an EF", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectChild(0x2F00), 0},
		{"EF under DF (P1 02)", []iso7816.Command{iso7816.SelectPath(true, 0x5000)}, iso7816.SelectEF(0x5001), 0x5001},
		{"P1 02 refuses a DF", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectEF(0x5000), 0},
		{"parent (P1 03)", []iso7816.Command{iso7816.SelectPath(true, 0x5000, 0x5001)}, iso7816.SelectParent(), 0x3F00},
		{"parent of the MF", []iso7816.Command{iso7816.SelectMF()}, iso7816.SelectParent(), 0},
		{"by AID", nil, iso7816.SelectAID(aid), 0x5000},
		{"by AID prefix", nil, iso7816.SelectAID(aid[:5]), 0x5000},
		{"unknown AID", nil, iso7816.SelectAID([]byte{0xA0, 0x00, 0x00, 0x09}), 0},
		{"path from MF", nil, iso7816.SelectPath(true, 0x5000, 0x5002), 0x5002},
		{"path from MF with 3F00", nil, iso7816.Select(iso7816.SelectPathFromMF, []byte{0x3F, 0x00, 0x50, 0x00}), 0x5000},
		{"path from current DF", []iso7816.Command{iso7816.SelectPath(true, 0x5000)}, iso7816.SelectPath(false, 0x5001), 0x5001},
		{"path through an EF", nil, iso7816.SelectPath(true, 0x2F00, 0x5001), 0},
		{"missing FID", nil, iso7816.SelectFID(0x1234), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			for _, p := range tt.pre {
				c.ok(p)
			}
			if tt.want == 0 {
				c.want(iso7816.SWFileNotFound, tt.cmd)
				return
			}
			if got := fid(c.ok(tt.cmd)); got != tt.want {
				t.Errorf("selected %04X, want %04X", got, tt.want)
			}
		})
	}
	c.t = t
	// Bad parameters.
	c.want(iso7816.SWWrongData, iso7816.Select(iso7816.SelectByFID, []byte{0x3F}))
	c.want(iso7816.SWWrongData, iso7816.Select(iso7816.SelectPathFromMF, []byte{0x50}))
	c.want(iso7816.SWIncorrectP1P2, iso7816.Select(0x05, []byte{0x50, 0x00}))
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsSelect, P2: 0x01, Data: []byte{0x3F, 0x00}})

	// What SELECT returns: FCP, FCI, nothing; the EF's FCP describes it.
	c.want(iso7816.SWOK, iso7816.SelectPath(true, 0x5000, 0x5001))
	sel := iso7816.SelectPath(true, 0x5000, 0x5001)
	sel.P2, sel.Ne = iso7816.SelectReturnNoData, 0
	if data := c.ok(sel); len(data) != 0 {
		t.Errorf("SELECT P2 0C returned %X", data)
	}
	sel.P2, sel.Ne = iso7816.SelectReturnFCI, 256
	fci := c.ok(sel)
	if len(fci) == 0 || fci[0] != iso7816.TagFCI {
		t.Errorf("SELECT P2 00 returned %X, want an FCI", fci)
	}
	p, err := iso7816.ParseFCP(fci)
	if err != nil || p.Size != 32 || p.SFI != 1 || p.FDB != iso7816.FDBTransparent || p.LCS != iso7816.LCSOperationalActivated {
		t.Errorf("FCI of 5001 = %+v, %v", p, err)
	}
	p, _ = iso7816.ParseFCP(c.ok(iso7816.SelectPath(true, 0x5000, 0x5002)))
	if p.FDB != iso7816.FDBLinearFixed || p.MaxRecordSize != 4 || p.NumRecords != 0 || p.SFI != 2 {
		t.Errorf("FCP of 5002 = %+v", p)
	}
	p, _ = iso7816.ParseFCP(c.ok(iso7816.SelectAID(aid)))
	if !bytes.Equal(p.DFName, aid) {
		t.Errorf("FCP of 5000 has DF name %X", p.DFName)
	}
	// Le shorter than the FCP: 6Cxx, and Exchange re-issues.
	short := iso7816.SelectMF()
	short.Ne = 2
	if data := c.ok(short); len(data) < 4 {
		t.Errorf("SELECT with Le 2: %X", data)
	}
}

func TestCreateFileErrors(t *testing.T) {
	c := newCard(t, memcard.Config{Memory: 600})
	tree(c)
	c.ok(iso7816.SelectPath(true, 0x5000))
	tests := []struct {
		name string
		fcp  iso7816.FCP
		sw   uint16
	}{
		{"FID taken", iso7816.FCP{FID: 0x5001, FDB: iso7816.FDBTransparent, Size: 1}, iso7816.SWFileExists},
		{"FID of the DF itself", iso7816.FCP{FID: 0x5000, FDB: iso7816.FDBTransparent, Size: 1}, iso7816.SWFileExists},
		{"MF again", iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF}, iso7816.SWFileExists},
		{"SFI taken", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1, SFI: 1}, iso7816.SWFileExists},
		{"DF name taken", iso7816.FCP{FID: 0x5100, FDB: iso7816.FDBDF, DFName: aid}, iso7816.SWDFNameExists},
		{"no FID", iso7816.FCP{FDB: iso7816.FDBTransparent, Size: 1}, iso7816.SWWrongData},
		{"reserved FID 3FFF", iso7816.FCP{FID: 0x3FFF, FDB: iso7816.FDBTransparent, Size: 1}, iso7816.SWWrongData},
		{"unknown structure", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBCyclic, MaxRecordSize: 4}, iso7816.SWWrongData},
		{"record EF without record size", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBLinearFixed}, iso7816.SWWrongData},
		{"DF with SFI", iso7816.FCP{FID: 0x5100, FDB: iso7816.FDBDF, SFI: 3}, iso7816.SWWrongData},
		{"EF with DF name", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1, DFName: []byte{1}}, iso7816.SWWrongData},
		{"SFI 31", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1, SFI: 31}, iso7816.SWWrongData},
		{"terminated LCS", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1, LCS: 0x0C}, iso7816.SWWrongData},
		{"proprietary security", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1,
			Security: &iso7816.CompactSecurity{AM: 0x81, SC: []byte{0}}}, iso7816.SWWrongData},
		{"larger than the card", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 1000}, iso7816.SWNotEnoughMemory},
		{"larger than an offset reaches", iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 0x8001}, iso7816.SWNotEnoughMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.create(tt.sw, tt.fcp)
		})
	}
	c.t = t
	c.want(iso7816.SWWrongData, iso7816.Command{INS: iso7816.InsCreateFile, Data: []byte{0x62, 0x05, 0x83}})
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsCreateFile, P1: 1, Data: []byte{0x62, 0x00}})
	// Memory comes back when a file is deleted.
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5003, FDB: iso7816.FDBTransparent, Size: 400})
	c.create(iso7816.SWNotEnoughMemory, iso7816.FCP{FID: 0x5004, FDB: iso7816.FDBTransparent, Size: 400})
	c.ok(iso7816.DeleteFile(0x5003))
	c.create(iso7816.SWOK, iso7816.FCP{FID: 0x5004, FDB: iso7816.FDBTransparent, Size: 400})
}

func TestBinary(t *testing.T) {
	c := newCard(t, memcard.Config{})
	tree(c)
	c.ok(iso7816.SelectPath(true, 0x5000, 0x5001))
	data := []byte("0123456789abcdefghijklmnopqrstuv")
	c.ok(must(iso7816.UpdateBinary(0, data[:20])))
	c.ok(must(iso7816.UpdateBinary(20, data[20:])))
	if got := c.ok(must(iso7816.ReadBinary(0, 256))); !bytes.Equal(got, data) {
		t.Errorf("READ BINARY Le 00 = %q", got)
	}
	if got := c.ok(must(iso7816.ReadBinary(30, 2))); string(got) != "uv" {
		t.Errorf("READ BINARY 30,2 = %q", got)
	}
	// Asking past the end: the rest and 6282.
	if got := c.want(iso7816.SWEndOfFile, must(iso7816.ReadBinary(28, 10))); string(got) != "stuv" {
		t.Errorf("READ BINARY 28,10 = %q", got)
	}
	c.want(iso7816.SWWrongP1P2, must(iso7816.ReadBinary(32, 1)))
	c.want(iso7816.SWWrongP1P2, must(iso7816.UpdateBinary(33, []byte{1})))
	c.want(iso7816.SWNotEnoughMemory, must(iso7816.UpdateBinary(31, []byte{1, 2})))
	c.want(iso7816.SWWrongLength, must(iso7816.ReadBinary(0, 0)))
	c.want(iso7816.SWWrongLength, iso7816.Command{INS: iso7816.InsUpdateBinary})
	// By SFI from the DF: P1 b8 set, the EF becomes current.
	c.ok(iso7816.SelectAID(aid))
	c.ok(must(iso7816.UpdateBinarySFI(1, 2, []byte("XY"))))
	if got := c.ok(must(iso7816.ReadBinarySFI(1, 0, 4))); string(got) != "01XY" {
		t.Errorf("READ BINARY SFI = %q", got)
	}
	if got := c.ok(must(iso7816.ReadBinary(2, 1))); string(got) != "X" {
		t.Errorf("READ BINARY after SFI = %q (SFI did not make the EF current)", got)
	}
	c.want(iso7816.SWFileNotFound, must(iso7816.ReadBinarySFI(9, 0, 1)))
	c.want(iso7816.SWCommandIncompatible, must(iso7816.ReadBinarySFI(2, 0, 1)))
	// No current EF after selecting a DF.
	c.ok(iso7816.SelectMF())
	c.want(iso7816.SWCommandNotAllowedNoEF, must(iso7816.ReadBinary(0, 1)))
	// A record EF refuses binary commands.
	c.ok(iso7816.SelectPath(true, 0x5000, 0x5002))
	c.want(iso7816.SWCommandIncompatible, must(iso7816.ReadBinary(0, 1)))
}

func TestRecords(t *testing.T) {
	c := newCard(t, memcard.Config{})
	tree(c)
	c.ok(iso7816.SelectAID(aid))
	c.want(iso7816.SWRecordNotFound, iso7816.ReadRecord(2, 1, 4))
	for i := range 3 {
		c.ok(iso7816.AppendRecord(2, []byte{byte(i), 1, 2, 3}))
	}
	c.want(iso7816.SWNotEnoughMemory, iso7816.AppendRecord(2, []byte{9, 9, 9, 9}))
	c.want(iso7816.SWWrongLength, iso7816.AppendRecord(0, []byte{1}))
	if got := c.ok(iso7816.ReadRecord(2, 2, 256)); !bytes.Equal(got, []byte{1, 1, 2, 3}) {
		t.Errorf("READ RECORD 2 = %X", got)
	}
	c.ok(iso7816.UpdateRecord(0, 3, []byte{7, 7, 7, 7}))
	if got := c.ok(iso7816.ReadRecord(0, 3, 4)); !bytes.Equal(got, []byte{7, 7, 7, 7}) {
		t.Errorf("READ RECORD 3 after UPDATE = %X", got)
	}
	c.want(iso7816.SWWrongLength, iso7816.UpdateRecord(0, 1, []byte{1, 2, 3}))
	c.want(iso7816.SWRecordNotFound, iso7816.ReadRecord(0, 4, 4))
	c.want(iso7816.SWIncorrectP1P2, iso7816.ReadRecord(0, 0, 4))
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsReadRecord, P1: 1, P2: 0x05, Ne: 4})
	// Le shorter than the record: 6C04 and Exchange re-issues with Le 04.
	if got := c.ok(iso7816.ReadRecord(0, 1, 2)); len(got) != 4 {
		t.Errorf("READ RECORD Le 2 = %X", got)
	}
	raw, _ := iso7816.ReadRecord(0, 1, 2).Bytes()
	resp, err := c.card.Transmit(raw)
	if err != nil || !bytes.Equal(resp, []byte{0x6C, 0x04}) {
		t.Errorf("raw READ RECORD Le 2 = %X, %v; want 6C04", resp, err)
	}
	p, _ := iso7816.ParseFCP(c.ok(iso7816.SelectPath(true, 0x5000, 0x5002)))
	if p.NumRecords != 3 {
		t.Errorf("FCP says %d records, want 3", p.NumRecords)
	}
	c.ok(iso7816.SelectPath(true, 0x2F00))
	c.want(iso7816.SWCommandIncompatible, iso7816.ReadRecord(0, 1, 4))
	c.want(iso7816.SWFileNotFound, iso7816.ReadRecord(7, 1, 4))
}

func TestGetDataAndChallenge(t *testing.T) {
	serial := []byte{0xC0, 0xDE, 0x00, 0x42}
	c := newCard(t, memcard.Config{Serial: serial, Rand: bytes.NewReader(bytes.Repeat([]byte{0xA5}, 64))})
	if got := c.ok(iso7816.GetData(iso7816.TagSerialNumber, 256)); !bytes.Equal(got, serial) {
		t.Errorf("GET DATA 005A = %X", got)
	}
	raw, _ := iso7816.GetData(iso7816.TagSerialNumber, 2).Bytes()
	if resp, _ := c.card.Transmit(raw); !bytes.Equal(resp, []byte{0x6C, 0x04}) {
		t.Errorf("GET DATA Le 2 = %X, want 6C04", resp)
	}
	c.want(iso7816.SWReferencedDataNotFound, iso7816.GetData(0x0066, 256))
	if got := c.ok(iso7816.GetChallenge(8)); !bytes.Equal(got, bytes.Repeat([]byte{0xA5}, 8)) {
		t.Errorf("GET CHALLENGE = %X", got)
	}
	c.want(iso7816.SWWrongLength, iso7816.Command{INS: iso7816.InsGetChallenge})
	c.want(iso7816.SWIncorrectP1P2, iso7816.Command{INS: iso7816.InsGetChallenge, P1: 1, Ne: 8})
	// The random source runs dry: 6F00, not a panic.
	c.want(iso7816.SWUnknown, iso7816.GetChallenge(64))
	// Real randomness by default.
	d := newCard(t, memcard.Config{})
	a, b := d.ok(iso7816.GetChallenge(16)), d.ok(iso7816.GetChallenge(16))
	if len(a) != 16 || bytes.Equal(a, b) {
		t.Errorf("two challenges %X %X", a, b)
	}
	if got := d.ok(iso7816.GetData(iso7816.TagSerialNumber, 256)); !bytes.Equal(got, memcard.DefaultSerial) {
		t.Errorf("default serial %X", got)
	}
}

func TestATR(t *testing.T) {
	for _, ext := range []bool{false, true} {
		atr := memcard.DefaultATR(ext)
		var tck byte
		for _, b := range atr[1:] {
			tck ^= b
		}
		if atr[0] != 0x3B || tck != 0 {
			t.Errorf("DefaultATR(%v) = %X: bad TS or TCK", ext, atr)
		}
		if got := memcard.New(memcard.Config{Extended: ext}).ATR(); !bytes.Equal(got, atr) {
			t.Errorf("ATR() = %X, want %X", got, atr)
		}
		// Card capabilities, third byte: b7 says extended Lc/Le.
		if has := atr[len(atr)-2]&0x40 != 0; has != ext {
			t.Errorf("DefaultATR(%v) = %X: extended bit %v", ext, atr, has)
		}
	}
	want := []byte{0x3B, 0x02, 0x14, 0x50}
	if got := memcard.New(memcard.Config{ATR: want}).ATR(); !bytes.Equal(got, want) {
		t.Errorf("configured ATR() = %X", got)
	}
}

func TestAPDUFormats(t *testing.T) {
	short := newCard(t, memcard.Config{})
	// Extended APDUs to a short card: 6700.
	raw := []byte{0x00, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00}
	if resp, _ := short.card.Transmit(raw); !bytes.Equal(resp, []byte{0x67, 0x00}) {
		t.Errorf("extended GET CHALLENGE to a short card = %X", resp)
	}
	if resp, _ := short.card.Transmit([]byte{0x00, 0x84, 0x00}); !bytes.Equal(resp, []byte{0x67, 0x00}) {
		t.Errorf("3-byte APDU = %X", resp)
	}
	ext := newCard(t, memcard.Config{Extended: true})
	if got := ext.ok(iso7816.GetChallenge(300)); len(got) != 300 {
		t.Errorf("extended GET CHALLENGE: %d bytes", len(got))
	}
	// Classes: proprietary, channels, secure messaging.
	for cla, want := range map[byte]uint16{
		0x80: iso7816.SWCLANotSupported, 0x20: iso7816.SWCLANotSupported,
		0x01: iso7816.SWLogicalChannelNotSupp, 0x40: iso7816.SWLogicalChannelNotSupp,
		0x04: iso7816.SWSecureMessagingNotSupp, 0x0C: iso7816.SWSecureMessagingNotSupp,
	} {
		short.want(want, iso7816.Command{CLA: cla, INS: iso7816.InsGetChallenge, Ne: 8})
	}
	short.want(iso7816.SWINSNotSupported, iso7816.Command{INS: 0x70})
	// GET RESPONSE with nothing pending.
	short.want(iso7816.SWConditionsNotSatisfied, iso7816.GetResponse(8))
	// A chain broken by another command.
	short.want(iso7816.SWOK, iso7816.Command{CLA: 0x10, INS: iso7816.InsCreateFile, Data: []byte{0x62}})
	short.want(iso7816.SWLastCommandExpected, iso7816.Command{CLA: 0x10, INS: iso7816.InsUpdateBinary, Data: []byte{1}})
}

// TestGetResponseLoop reads what a T=0-style card splits into 61xx parts,
// raw, to check the card's side of §5.3.4.
func TestGetResponseLoop(t *testing.T) {
	c := newCard(t, memcard.Config{MaxNe: 10, Rand: bytes.NewReader(make([]byte, 25))})
	raw, _ := iso7816.GetChallenge(25).Bytes()
	var got []byte
	resp, err := c.card.Transmit(raw)
	for i := 0; err == nil; i++ {
		sw1, sw2 := resp[len(resp)-2], resp[len(resp)-1]
		got = append(got, resp[:len(resp)-2]...)
		if sw1 == 0x90 {
			break
		}
		if sw1 != 0x61 || i > 5 {
			t.Fatalf("response %X", resp)
		}
		want := []byte{0x61, byte(25 - len(got))}
		if !bytes.Equal(resp[len(resp)-2:], want) {
			t.Errorf("SW %X, want %X", resp[len(resp)-2:], want)
		}
		gr, _ := iso7816.GetResponse(int(sw2)).Bytes()
		resp, err = c.card.Transmit(gr)
	}
	if err != nil || len(got) != 25 {
		t.Errorf("collected %d bytes, %v", len(got), err)
	}
}

func TestConcurrentUse(t *testing.T) {
	card := memcard.New(memcard.Config{})
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for range 50 {
				if _, e := iso7816.Send(card, iso7816.GetChallenge(8)); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := len(card.Transcript()); n != 200 {
		t.Errorf("transcript has %d entries, want 200", n)
	}
}

var errInjected = errors.New("injected transport failure")

func TestFaults(t *testing.T) {
	c := newCard(t, memcard.Config{})
	raw, _ := iso7816.GetChallenge(8).Bytes()
	c.card.FailAfter(2, errInjected)
	for i := range 4 {
		_, err := c.card.Transmit(raw)
		if (i >= 2) != errors.Is(err, errInjected) {
			t.Errorf("APDU %d after FailAfter(2): %v", i+1, err)
		}
	}
	c.card.ClearFaults()
	c.ok(iso7816.GetChallenge(8))

	// A failed APDU is not processed: the MF is not created.
	c.card.FailAfter(0, errInjected)
	cf, _ := iso7816.CreateFile(mf(nil))
	if _, err := iso7816.Send(c.card, cf); !errors.Is(err, errInjected) {
		t.Errorf("CREATE FILE under FailAfter(0) = %v", err)
	}
	c.card.ClearFaults()
	c.want(iso7816.SWFileNotFound, iso7816.SelectMF())

	// Removal.
	c.create(iso7816.SWOK, mf(nil))
	c.cred(iso7816.SWOK, pinCr)
	c.ok(iso7816.Verify(0x81, pin))
	c.card.Remove()
	_, err := iso7816.Send(c.card, iso7816.SelectMF())
	if !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Fatalf("Transmit after Remove = %v, want ErrCardRemoved", err)
	}
	c.card.Insert()
	// Files and credentials survive; the security status does not.
	c.ok(iso7816.SelectMF())
	c.want(0x63C3, iso7816.VerifyStatus(0x81))
	tr := c.card.Transcript()
	var removedSeen bool
	for _, e := range tr {
		if errors.Is(e.Err, iso7816.ErrCardRemoved) && e.Response == nil {
			removedSeen = true
		}
	}
	if !removedSeen {
		t.Error("transcript does not record the failed transmit")
	}
	c.card.Remove()
	c.card.ClearFaults()
	c.ok(iso7816.SelectMF())
	c.card.SetLatency(1)
	c.ok(iso7816.SelectMF())
	c.card.ClearFaults()
}

func TestTranscriptMasksCredentials(t *testing.T) {
	c := newCard(t, memcard.Config{})
	c.create(iso7816.SWOK, mf(nil))
	c.cred(iso7816.SWOK, pinCr)
	c.cred(iso7816.SWOK, pukCr)
	c.want(0x63C2, iso7816.Verify(0x81, []byte("000000")))
	c.ok(iso7816.Verify(0x81, pin))
	c.ok(iso7816.ChangeReferenceData(0x81, pin, pin2))
	c.ok(iso7816.ResetRetryCounter(0x81, puk, pin))
	c.ok(iso7816.ResetRetryCounter(0x81, puk, nil))
	// Extended VERIFY with Le: the mask must cover the data only.
	c.ok(iso7816.SelectMF())
	var text strings.Builder
	for _, e := range c.card.Transcript() {
		fmt.Fprintln(&text, e.String())
		fmt.Fprintf(&text, "%X\n", e.Command)
	}
	out := text.String()
	for _, secret := range [][]byte{pin, puk, pin2} {
		for _, form := range []string{string(secret), fmt.Sprintf("%X", secret), fmt.Sprintf("%x", secret)} {
			if strings.Contains(out, form) {
				t.Errorf("transcript contains %q:\n%s", form, out)
			}
		}
	}
	if !strings.Contains(out, "<6 secret bytes>") || !strings.Contains(out, "<14 secret bytes>") {
		t.Errorf("transcript does not show the masked lengths:\n%s", out)
	}
	if !strings.Contains(out, "00A4000C023F00") && !strings.Contains(out, "00A40004023F00") {
		t.Errorf("transcript lost a SELECT:\n%s", out)
	}
	var masked int
	for _, e := range c.card.Transcript() {
		if e.Masked {
			masked++
		}
	}
	if masked != 7 {
		t.Errorf("%d masked entries, want 7", masked)
	}
	// FormatAPDU for callers' logs.
	raw, _ := iso7816.Verify(0x81, pin).Bytes()
	if got := memcard.FormatAPDU(raw, nil); !strings.HasPrefix(got, "0020008106 <6 secret bytes>") {
		t.Errorf("FormatAPDU = %q", got)
	}
	if got := memcard.FormatAPDU(raw, memcard.NoMask); got != fmt.Sprintf("0020008106%X", pin) {
		t.Errorf("FormatAPDU(NoMask) = %q", got)
	}
	// A malformed VERIFY is masked whole after the header.
	bad := append([]byte{0x00, 0x20, 0x00, 0x81, 0x09}, pin...)
	if got := memcard.FormatAPDU(bad, nil); strings.Contains(got, fmt.Sprintf("%X", pin)) {
		t.Errorf("FormatAPDU(malformed VERIFY) = %q", got)
	}
}

func TestTranscriptLimit(t *testing.T) {
	c := newCard(t, memcard.Config{TranscriptLimit: 3})
	for range 5 {
		c.ok(iso7816.GetChallenge(1))
	}
	tr := c.card.Transcript()
	if len(tr) != 3 || tr[0].Seq != 3 || tr[2].Seq != 5 {
		t.Errorf("transcript %+v, want Seq 3..5", tr)
	}
	for range 5 {
		c.ok(iso7816.GetChallenge(1))
	}
	tr = c.card.Transcript()
	if len(tr) != 3 || tr[0].Seq != 8 || tr[1].Seq != 9 || tr[2].Seq != 10 {
		t.Errorf("transcript after wrapping %+v, want Seq 8, 9, 10", tr)
	}
	c.card.ClearTranscript()
	c.ok(iso7816.GetChallenge(1))
	if tr := c.card.Transcript(); len(tr) != 1 || tr[0].Seq != 1 {
		t.Errorf("after ClearTranscript: %+v", tr)
	}
	none := newCard(t, memcard.Config{TranscriptLimit: -1})
	none.ok(iso7816.GetChallenge(1))
	if tr := none.card.Transcript(); len(tr) != 0 {
		t.Errorf("TranscriptLimit -1 kept %d entries", len(tr))
	}
}
