package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/internal/stacktest"
)

// TestCMSSerialOnStack: the three ICCSN use cases (docs/dsc.md, "Card
// selection and identity") on the two own cards, whose SoftHSM2 tokens get
// two different CMSCardSerialNumbers from `cardwright encode` jobs. Then,
// without --reader, SelectCriteriaIccsn with the second card's CMS serial
// picks the second reader and reads that serial back; with
// useChipSerialAsIccsn the first card's chip serial picks the first reader;
// RetrieveAllTokens lists both CMS serials (the chip serials with
// useChipSerialAsIccsn); an ICCSN read reports the CMS serial (the chip's
// with the flag). The tokens are read back by package p11 in another
// process.
func TestCMSSerialOnStack(t *testing.T) {
	e := newTokenStackEnv(t)
	chip := [2]string{e.s.Get(t, "SERIAL_OWN_1"), e.s.Get(t, "SERIAL_OWN_2")}
	cms := [2]string{"CW-CMS-7001", "CW-CMS-7002"}
	dsc := func(name, fields string, desc ...string) string {
		return writeTestFile(t, e.dir, name+".dsc", "[Encoding]\nType=1024,Chip\nDevices=8711\n\n[Fields]\n"+fields+
			"\n[Description]\nPKCS11LibraryLinux="+e.module+"\n"+strings.Join(desc, "\n")+"\n")
	}
	// run encodes and returns the result; the job must succeed.
	run := func(t *testing.T, args ...string) encodeResult {
		t.Helper()
		code, stdout, stderr := e.encode("", append(args, "--config", e.cfg, "--json")...)
		var res encodeResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || res.Error != nil {
			t.Fatalf("exit %d, %+v, %v\n%s\n%s", code, res.Error, err, stdout, stderr)
		}
		noPINs(t, stdout, stderr)
		return res
	}

	// The CMS serials: C_InitToken on the token mapped to each reader,
	// PIN, then the CMSCardSerialNumber data object.
	write := dsc("write", "PIN_FIELD=\nPUK_FIELD=\nLABEL=\nSER=\n",
		"InitToken=true", "InitialPUK=PUK_FIELD", "PIN=PIN_FIELD", "InitialLabel=LABEL", "CMSCardSerialNumber=SER")
	for i, reader := range e.own {
		run(t, "--dsc", write, "--reader", reader, "--field-env", "PIN_FIELD=DEMO_PIN", "--field-env", "PUK_FIELD=DEMO_PUK",
			"--field", fmt.Sprint("LABEL=cardwright demo ", i+1), "--field", "SER="+cms[i])
		if tk := e.readTokenState(fmt.Sprint("cardwright demo ", i+1)); tk.Error != "" || tk.CMSSerial != cms[i] {
			t.Fatalf("token of %s: %+v; want CMS serial %s", reader, tk, cms[i])
		}
	}

	sel := dsc("select", "ICCSN=\nSEL=\n", "iccsnfield=ICCSN", "UseSelectCriteriaIccsn=true", "SelectCriteriaIccsn=SEL")
	selChip := dsc("select-chip", "ICCSN=\nSEL=\n", "iccsnfield=ICCSN", "UseSelectCriteriaIccsn=true", "SelectCriteriaIccsn=SEL", "useChipSerialAsIccsn=true")
	t.Run("select by CMS serial", func(t *testing.T) {
		res := run(t, "--dsc", sel, "--field", "SEL="+cms[1])
		if res.Reader != e.own[1] || res.Fields["ICCSN"] != cms[1] {
			t.Errorf("reader %q, ICCSN %q; want %q, %s", res.Reader, res.Fields["ICCSN"], e.own[1], cms[1])
		}
	})
	t.Run("select by chip serial with useChipSerialAsIccsn", func(t *testing.T) {
		res := run(t, "--dsc", selChip, "--field", "SEL="+chip[0])
		if res.Reader != e.own[0] || res.Fields["ICCSN"] != chip[0] {
			t.Errorf("reader %q, ICCSN %q; want %q, %s", res.Reader, res.Fields["ICCSN"], e.own[0], chip[0])
		}
	})
	t.Run("chip serial of a card with a CMS serial", func(t *testing.T) {
		code, stdout, stderr := e.encode("", "--dsc", sel, "--field", "SEL="+chip[0], "--config", e.cfg, "--json")
		if je := jobError(t, stdout); code != exitFailure || je == nil || je.Code != api.CodeCardNotFound {
			t.Errorf("exit %d, %+v; want card_not_found\n%s", code, je, stderr)
		}
	})
	t.Run("RetrieveAllTokens", func(t *testing.T) {
		for _, tc := range []struct {
			flag        string
			want, other [2]string
		}{{"false", cms, chip}, {"true", chip, cms}} {
			all := dsc("all-"+tc.flag, "ALL=\n", "RetrieveAllTokens=true", "AllTokensIccsnsField=ALL", "useChipSerialAsIccsn="+tc.flag)
			list := strings.Split(run(t, "--dsc", all).Fields["ALL"], ",")
			for i := range 2 {
				if !slices.Contains(list, tc.want[i]) || slices.Contains(list, tc.other[i]) {
					t.Errorf("useChipSerialAsIccsn=%s: %q; want %s and not %s", tc.flag, list, tc.want[i], tc.other[i])
				}
			}
		}
	})
	t.Run("read ICCSN", func(t *testing.T) {
		for _, tc := range []struct{ flag, want string }{{"false", cms[1]}, {"true", chip[1]}} {
			read := dsc("read-"+tc.flag, "ICCSN=\n", "iccsnfield=ICCSN", "useChipSerialAsIccsn="+tc.flag)
			if got := run(t, "--dsc", read, "--reader", e.own[1]).Fields["ICCSN"]; got != tc.want {
				t.Errorf("useChipSerialAsIccsn=%s: ICCSN %q, want %s", tc.flag, got, tc.want)
			}
		}
	})
}

// newTokenStackEnv is newStackEnv for a test that only reads the own cards
// (GET DATA 5A) and works on fresh tokens: the cards are used as they are,
// not restarted (which costs seconds a card).
func newTokenStackEnv(t *testing.T) *stackEnv {
	s := stacktest.Require(t)
	e := &stackEnv{t: t, s: s, dir: t.TempDir(), module: s.Get(t, "SOFTHSM_MODULE"),
		own: [2]string{s.Get(t, "READER_OWN_1"), s.Get(t, "READER_OWN_2")}}
	if err := os.Mkdir(filepath.Join(e.dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.conf = writeTestFile(t, e.dir, "softhsm2.conf", "directories.tokendir = "+filepath.Join(e.dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n")
	e.cfg = writeTestFile(t, e.dir, "cardwright.cfg", fmt.Sprintf("[pkcs11]\nmodule = %s\n[tokens]\n%s = %s, cardwright demo 1\n%s = %s, cardwright demo 2\n",
		e.module, regexpQuote(e.own[0]), e.module, regexpQuote(e.own[1]), e.module))
	e.ca = filepath.Join(e.dir, "ca")
	return e
}
