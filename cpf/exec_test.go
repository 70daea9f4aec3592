package cpf

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
)

// newKey makes a PIN-encryption certificate and its key.
func newKey(t testing.TB) (*x509.Certificate, pinblob.Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "PIN encryption"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyAgreement}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	k, err := pinblob.NewKey(cert, priv)
	if err != nil {
		t.Fatal(err)
	}
	return cert, k
}

// readEF reads a transparent EF by its path from the MF with plain
// SELECT and READ BINARY, independent of the engine.
func readEF(t testing.TB, card iso7816.Card, size int, path ...uint16) []byte {
	t.Helper()
	var p []byte
	for _, fid := range path {
		p = append(p, byte(fid>>8), byte(fid))
	}
	if _, err := iso7816.Send(card, iso7816.Command{INS: iso7816.InsSelect, P1: 0x08, P2: 0x0C, Data: p}); err != nil {
		t.Fatalf("selecting %X: %v", p, err)
	}
	var out []byte
	for len(out) < size {
		cmd, _ := iso7816.ReadBinary(len(out), min(size-len(out), 256))
		b, err := iso7816.Send(card, cmd)
		if err != nil {
			t.Fatalf("reading %X at %d: %v", p, len(out), err)
		}
		out = append(out, b...)
	}
	return out
}

func compileFile(t testing.TB, path string, cfg Config) *Program {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(path, src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSeedOnMemcard runs the seed profile with the real blob and reads
// every file back.
func TestSeedOnMemcard(t *testing.T) {
	cert, key := newKey(t)
	prog := compileFile(t, "testdata/seed.cpf", siemens)
	plan, err := prog.Prepare(Params{PINCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	card := memcard.New(memcard.Config{})
	res, err := plan.Execute(context.Background(), card)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Secrets) != 8 {
		t.Fatalf("%d secrets", len(plan.Secrets))
	}
	for name, v := range plan.Secrets {
		if strings.Contains(Transcript(res.Transcript), v.Reveal()) {
			t.Errorf("transcript shows %s", name)
		}
	}
	odf := readEF(t, card, 12, 0x5015, 0x5031)
	if want := "A40A300804063F0050154441"; hexs(odf) != want {
		t.Errorf("EFODF = %X", odf)
	}
	cdf := readEF(t, card, 0x6A4, 0x5015, 0x4441)
	if cdf[0] != 0x30 || cdf[1] != 0x2F || !bytes.Contains(cdf, []byte("Digital Signature")) || cdf[0x31] != 0 {
		t.Errorf("EFCDF1 = %X…", cdf[:0x33])
	}
	cont := readEF(t, card, 6000, 0x5015, 0x4541)
	pins, err := pinblob.Open(cont, []pinblob.Key{key})
	if err != nil {
		t.Fatalf("opening the blob: %v", err)
	}
	if len(pins) != 8 {
		t.Fatalf("%d PINs in the blob", len(pins))
	}
	for _, p := range pins {
		if v := plan.Secrets["SEC_"+p.Name]; !v.Equal(p.Value) {
			t.Errorf("blob %s differs from the generated value", p.Name)
		}
	}
	name, err := pinblob.FindDataObject(cont, LabelProfileName)
	if err != nil || string(name) != "P15_Siemens" {
		t.Errorf("profile name %q, %v", name, err)
	}
	_, other := newKey(t)
	if _, err := pinblob.Open(cont, []pinblob.Key{other}); err == nil || !strings.Contains(err.Error(), "no decryption key found matching #"+hexs(pinblob.KeyID(cert))) {
		t.Errorf("with another key: %v", err)
	}
}

func hexs(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// eraseProfile is a profile with or without MakeCardEraseable() and
// BurnFuse(), and a PUK as SO credential.
func eraseProfile(eraseable, fuse bool) string {
	var b strings.Builder
	if eraseable {
		b.WriteString("MakeCardEraseable()\n")
	}
	b.WriteString("CardModel 'ISO7816'\nSEC_PUK = '87654321'\nCreatePin PUK value=SEC_PUK so=yes\n")
	b.WriteString("CreatePin PIN1 value=SEC_PIN1 unblock=PUK\n")
	b.WriteString("MasterFile\nCreateEf A id=0x1000 maxsize=4 read=always\nEndfile\nFile Static A\ndata = 'abcd'\nEndfile\nCreateFiles()\n")
	if fuse {
		b.WriteString("BurnFuse()\n")
	}
	return b.String()
}

// TestEraseCases checks the three erase cases: MakeCardEraseable() and
// BurnFuse(), neither, and BurnFuse() alone.
func TestEraseCases(t *testing.T) {
	tests := []struct {
		name            string
		eraseable, fuse bool
		anonymous       bool // anonymous erase works
	}{
		{"eraseable and fuse", true, true, true},
		{"neither", false, false, true},
		{"fuse only", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			prog, err := Compile("erase.cpf", []byte(eraseProfile(tc.eraseable, tc.fuse)), Config{})
			if err != nil {
				t.Fatal(err)
			}
			card := memcard.New(memcard.Config{})
			pin := secret.New("1234")
			plan, err := prog.Prepare(Params{Secrets: map[string]secret.Value{"SEC_PIN1": pin}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plan.Execute(ctx, card); err != nil {
				t.Fatal(err)
			}
			if card.Operational() != tc.fuse {
				t.Fatalf("operational = %v", card.Operational())
			}
			err = DeleteProfile(ctx, card, nil)
			if tc.anonymous {
				if err != nil {
					t.Fatalf("anonymous erase: %v", err)
				}
			} else {
				if !errors.Is(err, ErrNotErasable) || !errors.Is(err, iso7816.ErrSecurityStatus) {
					t.Fatalf("anonymous erase: %v, want ErrNotErasable", err)
				}
				// The PIN is not the SO credential; the wrong PUK is refused.
				if err := DeleteProfile(ctx, card, LoginFor(pin, secret.Value{})); !errors.Is(err, ErrNotErasable) {
					t.Fatalf("erase with PIN1: %v", err)
				}
				if err := DeleteProfile(ctx, card, LoginFor(pin, secret.New("00000000"))); !errors.Is(err, iso7816.ErrVerificationFailed) || strings.Contains(err.Error(), "00000000") {
					t.Fatalf("erase with a wrong PUK: %v", err)
				}
				if err := DeleteProfile(ctx, card, LoginFor(pin, secret.New("87654321"))); err != nil {
					t.Fatalf("erase with the PUK: %v", err)
				}
			}
			if _, err := iso7816.Send(card, iso7816.SelectMF()); !errors.Is(err, iso7816.ErrFileNotFound) {
				t.Errorf("after the erase SELECT MF gives %v, want 6A82", err)
			}
			if _, ok := card.Tries(0x84); ok {
				t.Error("the PUK survived the erase")
			}
			if err := DeleteProfile(ctx, card, nil); !errors.Is(err, ErrNoProfile) {
				t.Errorf("erasing a virgin card: %v", err)
			}
			// The card takes the profile again.
			if _, err := plan.Execute(ctx, card); err != nil {
				t.Errorf("second run after the erase: %v", err)
			}
		})
	}
}

// removingCard takes the card out after n APDUs.
type removingCard struct {
	*memcard.Card
	n int
}

func (c *removingCard) Transmit(cmd []byte) ([]byte, error) {
	if c.n == 0 {
		c.Remove()
	}
	c.n--
	return c.Card.Transmit(cmd)
}

func TestExecuteFailures(t *testing.T) {
	withFakeSeal(t)
	prog := compileFile(t, "testdata/seed.cpf", siemens)
	plan, err := prog.Prepare(Params{PINCert: testCert})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("card removed", func(t *testing.T) {
		card := &removingCard{Card: memcard.New(memcard.Config{}), n: 5}
		res, err := plan.Execute(context.Background(), card)
		var ee *ExecError
		if !errors.As(err, &ee) || !errors.Is(err, iso7816.ErrCardRemoved) {
			t.Fatalf("error %v", err)
		}
		if ee.Pos.Line != 87 || ee.Stmt != "CreateFiles()" || ee.What != "create EF EFCDF1 (4441)" || len(res.Done) != 4 {
			t.Errorf("error %v, done %q", err, res.Done)
		}
		if !strings.HasPrefix(err.Error(), "testdata/seed.cpf:87:1: CreateFiles(): create EF EFCDF1 (4441): ") ||
			!strings.Contains(err.Error(), "already written: MF created, DF DFPKCS15 (5015) created, EF EFODF (5031) created, EFODF bytes 0..11 of 12 written") {
			t.Errorf("message %q", err)
		}
	})
	t.Run("card full", func(t *testing.T) {
		card := memcard.New(memcard.Config{Memory: 2000})
		_, err := plan.Execute(context.Background(), card)
		var ee *ExecError
		if !errors.As(err, &ee) || ee.SW != iso7816.SWNotEnoughMemory || !errors.Is(err, iso7816.ErrNoSpace) {
			t.Fatalf("error %v", err)
		}
		if ee.What != "create EF EFCERT1 (4541)" || !strings.Contains(err.Error(), "card returned 6A84") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := plan.Execute(ctx, memcard.New(memcard.Config{}))
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("profile twice", func(t *testing.T) {
		card := memcard.New(memcard.Config{})
		if _, err := plan.Execute(context.Background(), card); err != nil {
			t.Fatal(err)
		}
		_, err := plan.Execute(context.Background(), card)
		if !errors.Is(err, iso7816.ErrFileExists) || !strings.Contains(err.Error(), "create DF DFPKCS15") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestPrepareErrors(t *testing.T) {
	withFakeSeal(t)
	base := "CardModel 'ISO7816'\n"
	tests := []struct {
		name, src string
		params    Params
		want      string
	}{
		{"missing parameter", "A = B\n", Params{}, "t.cpf:2:5: B is not assigned in the profile and no profile parameter B was given"},
		{"parameter collides", "A = 'x'\n", Params{Values: map[string][]byte{"A": nil}}, "t.cpf:2:1: profile parameter A collides with this assignment"},
		{"secret as parameter", "", Params{Values: map[string][]byte{"SEC_PIN1": nil}}, "SEC_PIN1 cannot be a profile parameter"},
		{"secret given and assigned", "SEC_PIN1 = SECRANDOM(4)\n", Params{Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("1234")}}, "t.cpf:2:1: SEC_PIN1 is given by the encoding description and assigned here"},
		{"unknown secret", "", Params{Secrets: map[string]secret.Value{"PIN": secret.New("1234")}}, "t.cpf: PIN is not a secret variable"},
		{"secret missing", "PERSINFO_PUT_SEC(SEC_PUK)\n", Params{}, "t.cpf:2:18: SEC_PUK is neither assigned in the profile nor given by the encoding description"},
		{"no certificate", "SEC_PIN1 = '1234'\nPERSINFO_PUT_SEC(SEC_PIN1)\nPERSINFO_ENCRYPT_SEC()\n", Params{}, "t.cpf:4:1: PERSINFO_ENCRYPT_SEC(): no PIN-encryption certificate"},
		{"minlen", "CreatePin PIN1 value=SEC_PIN1 minlen=6\n", Params{Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("1234")}}, "t.cpf:2:1: CreatePin PIN1: SEC_PIN1 has 4 characters, fewer than minlen=6"},
		{"dynamic content too long", "MasterFile\nCreateEf A id=1 maxsize=2\nEndfile\nFile Dynamic A\ndata = P\nEndfile\nCreateFiles()\n",
			Params{Values: map[string][]byte{"P": []byte("abc")}}, "t.cpf:6:8: 3 bytes of data do not fit A (maxsize=2)"},
		{"dynamic record length", "MasterFile\nCreateEf A id=1 type=linear recordsize=2\nEndfile\nFile Dynamic A\nrecord = P\nEndfile\nCreateFiles()\n",
			Params{Values: map[string][]byte{"P": []byte("abc")}}, "t.cpf:6:10: record of 3 bytes; A has recordsize=2"},
		{"DF overflow with auto", "MasterFile\nCreateDf D id=2 maxsize=2\nCreateEf A id=1 maxsize=auto\nEndDF\nEndfile\nFile Dynamic A\ndata = P\nEndfile\nCreateFiles()\n",
			Params{Values: map[string][]byte{"P": []byte("abc")}}, "t.cpf:3:25: the EFs of D take 3 bytes; maxsize=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := Compile("t.cpf", []byte(base+tc.src), Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = prog.Prepare(tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Prepare: %v\nwant %q", err, tc.want)
			}
			for _, s := range tc.params.Secrets {
				if err != nil && strings.Contains(err.Error(), s.Reveal()) {
					t.Errorf("the error shows a secret")
				}
			}
		})
	}
}

func TestSecRandom(t *testing.T) {
	for kind, alphabet := range randomAlphabets {
		for _, n := range []int{1, 6, 64} {
			v, err := randomSecret(rand.Reader, n, alphabet)
			if err != nil {
				t.Fatal(err)
			}
			if v.Len() != n || strings.Trim(v.Reveal(), alphabet) != "" {
				t.Errorf("%s(%d) gave %d characters outside the alphabet", kind, n, v.Len())
			}
		}
	}
	a, _ := randomSecret(rand.Reader, 16, randomAlphabets["alnum"])
	b, _ := randomSecret(rand.Reader, 16, randomAlphabets["alnum"])
	if a.Equal(b) {
		t.Error("two random secrets are equal")
	}
}

// TestDocExample keeps the complete example of docs/cpf.md working: it
// must equal testdata/example.cpf, run on the in-memory card, make the
// card operational and stay erasable.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/cpf.md")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile("testdata/example.cpf")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(doc), "## A complete example")
	_, block, _ := strings.Cut(after, "```\n")
	block, _, _ = strings.Cut(block, "```")
	if block != string(ex) {
		t.Fatal("the example in docs/cpf.md differs from testdata/example.cpf")
	}
	cert, key := newKey(t)
	prog := compileFile(t, "testdata/example.cpf", Config{})
	plan, err := prog.Prepare(Params{PINCert: cert, Values: map[string][]byte{"HOLDER": []byte("Erika")},
		Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("1234"), "SEC_PUK": secret.New("12345678")}})
	if err != nil {
		t.Fatal(err)
	}
	card := memcard.New(memcard.Config{})
	if _, err := plan.Execute(context.Background(), card); err != nil {
		t.Fatal(err)
	}
	if !card.Operational() {
		t.Error("the fuse is not burnt")
	}
	// EFTOKEN needs nothing to read; EFLOG needs PIN1.
	if got := readEF(t, card, 5, 0x5015, 0x5032); string(got) != "Erika" {
		t.Errorf("EFTOKEN = %q", got)
	}
	if _, err := iso7816.Send(card, iso7816.ReadRecord(6, 1, 8)); !errors.Is(err, iso7816.ErrSecurityStatus) {
		t.Errorf("reading EFLOG without PIN1: %v", err)
	}
	if _, err := iso7816.Send(card, iso7816.Verify(0x81, []byte("1234"))); err != nil {
		t.Fatal(err)
	}
	if rec, err := iso7816.Send(card, iso7816.ReadRecord(6, 1, 8)); err != nil || rec[7] != 1 {
		t.Errorf("reading EFLOG with PIN1: %X %v", rec, err)
	}
	pins, err := pinblob.Open(readEF(t, card, len(plan.PersInfo), 0x5015, 0x4541), []pinblob.Key{key})
	if err != nil || len(pins) != 3 || pins[0].Name != "PIN1" || pins[0].Value.Reveal() != "1234" {
		t.Errorf("blob: %v %v", pins, err)
	}
	if err := DeleteProfile(context.Background(), card, nil); err != nil {
		t.Errorf("anonymous erase: %v", err)
	}
}

func TestReadFileAndPersInfoFile(t *testing.T) {
	cert, key := newKey(t)
	prog := compileFile(t, "testdata/seed.cpf", siemens)
	path, ok := prog.PersInfoFile()
	if !ok || len(path) != 2 || path[0] != 0x5015 || path[1] != 0x4541 {
		t.Fatalf("PersInfoFile = %04X, %v", path, ok)
	}
	plan, err := prog.Prepare(Params{PINCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	card := memcard.New(memcard.Config{AlwaysGetResponse: true})
	if _, err := plan.Execute(context.Background(), card); err != nil {
		t.Fatal(err)
	}
	cont, err := ReadFile(context.Background(), card, path, 1<<16)
	if err != nil || len(cont) != 6000 || !bytes.HasPrefix(cont, plan.PersInfo) {
		t.Fatalf("ReadFile: %d bytes, %v", len(cont), err)
	}
	if pins, err := pinblob.Open(cont, []pinblob.Key{key}); err != nil || len(pins) != 8 {
		t.Errorf("Open: %d PINs, %v", len(pins), err)
	}
	if _, err := ReadFile(context.Background(), card, []uint16{0x5015, 0x9999}, 100); !errors.Is(err, iso7816.ErrFileNotFound) || !strings.Contains(err.Error(), "selecting 3F00/5015/9999") {
		t.Errorf("missing file: %v", err)
	}
	p2 := compileFile(t, "testdata/example.cpf", Config{})
	if path, ok := p2.PersInfoFile(); !ok || len(path) != 2 || path[1] != 0x4541 {
		t.Errorf("example: PersInfoFile = %04X, %v", path, ok)
	}
	p3, err := Compile("x.cpf", []byte("CardModel 'ISO7816'\nMasterFile\nCreateEf A id=1 maxsize=1\nEndfile\nFile Static A\ndata='a'\nEndfile\nCreateFiles()\n"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p3.PersInfoFile(); ok {
		t.Error("a profile without PERSINFO_SEC() has a PersInfoFile")
	}
}

// TestCredentialsISO checks that credentials made by CreatePin behave as
// ISO/IEC 7816-4 §11.5 says: VERIFY, CHANGE REFERENCE DATA, and RESET
// RETRY COUNTER with the unblocking credential named by unblock=.
func TestCredentialsISO(t *testing.T) {
	src := "CardModel 'ISO7816'\nCreatePin PUK value=SEC_PUK retries=2\nCreatePin PIN1 value=SEC_PIN1 retries=3 minlen=4 unblock=PUK\n" +
		"MasterFile\nCreateEf A id=0x1000 maxsize=4 read=PIN1\nEndfile\nFile Static A\ndata = 'abcd'\nEndfile\nCreateFiles()\nBurnFuse()\n"
	prog, err := Compile("c.cpf", []byte(src), Config{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := prog.Prepare(Params{Secrets: map[string]secret.Value{"SEC_PIN1": secret.New("1234"), "SEC_PUK": secret.New("99998888")}})
	if err != nil {
		t.Fatal(err)
	}
	card := memcard.New(memcard.Config{})
	if _, err := plan.Execute(context.Background(), card); err != nil {
		t.Fatal(err)
	}
	send := func(c iso7816.Command) error { _, err := iso7816.Send(card, c); return err }
	rb, _ := iso7816.ReadBinary(0, 4)
	if err := send(iso7816.SelectPath(true, 0x1000)); err != nil {
		t.Fatal(err)
	}
	if err := send(rb); !errors.Is(err, iso7816.ErrSecurityStatus) {
		t.Errorf("READ BINARY before VERIFY: %v", err)
	}
	for i := 0; i < 3; i++ {
		send(iso7816.Verify(0x81, []byte("0000")))
	}
	if err := send(iso7816.Verify(0x81, []byte("1234"))); !errors.Is(err, iso7816.ErrAuthBlocked) {
		t.Fatalf("PIN1 after three wrong tries: %v", err)
	}
	if err := send(iso7816.ResetRetryCounter(0x81, []byte("99998888"), []byte("5678"))); err != nil {
		t.Fatalf("RESET RETRY COUNTER with the PUK: %v", err)
	}
	if err := send(iso7816.ChangeReferenceData(0x81, []byte("5678"), []byte("24680"))); err != nil {
		t.Fatalf("CHANGE REFERENCE DATA: %v", err)
	}
	if err := send(iso7816.ChangeReferenceData(0x81, []byte("24680"), []byte("123"))); !errors.Is(err, iso7816.ErrWrongData) {
		t.Errorf("a new PIN shorter than minlen=4: %v", err)
	}
	if err := send(iso7816.Verify(0x81, []byte("24680"))); err != nil {
		t.Fatalf("VERIFY with the changed PIN: %v", err)
	}
	if b, err := iso7816.Send(card, rb); err != nil || string(b) != "abcd" {
		t.Errorf("READ BINARY after VERIFY: %q %v", b, err)
	}
	if n, _ := card.Tries(0x84); n != 2 {
		t.Errorf("PUK tries %d, want its retries=2", n)
	}
}
