package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/cpf"
	"github.com/cardwright/cardwright/internal/stacktest"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/pinblob"
)

func cpfRun(t testing.TB, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code = runMain(context.Background(), e, args)
	return code, out.String(), errb.String()
}

// cpfPINKey makes a PIN-encryption certificate (written as PEM into dir)
// and its key.
func cpfPINKey(t testing.TB, dir string) (string, *x509.Certificate, pinblob.Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "PIN encryption"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	key, err := pinblob.NewKey(cert, priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pinenc.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert, key
}

const cpfTestProfile = `CardModel 'ISO7816'
SEC_PIN2 = SECRANDOM(8)
CreatePin PUK value=SEC_PUK so=yes
CreatePin PIN1 value=SEC_PIN1 unblock=PUK minlen=4
CreatePin PIN2 value=SEC_PIN2
PERSINFO_PUT_SEC(SEC_PIN1)
PERSINFO_PUT_SEC(SEC_PUK)
PERSINFO_ENCRYPT_SEC()
MasterFile
CreateEf NAME id=0x1000 maxsize=auto read=always update=PIN1
CreateEf PINS id=0x1001 maxsize=1000 read=always
Endfile
File Dynamic NAME
data = HOLDER
Endfile
File Dynamic PINS
data = PERSINFO_SEC()
Endfile
CreateFiles()
BurnFuse()
`

func TestCPFRunDryRun(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := cpfPINKey(t, dir)
	prof := filepath.Join(dir, "p.cpf")
	if err := os.WriteFile(prof, []byte(cpfTestProfile), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MY_PIN": "314159", "MY_PUK": "27182818"}
	code, out, errs := cpfRun(t, env, "cpf", "run", "--dry-run", "--transcript", "--pin-cert", certFile,
		"--secret-env", "SEC_PIN1=MY_PIN", "--secret-env", "SEC_PUK=MY_PUK", "--param", "HOLDER=SGFucyBNdXN0ZXI=", prof)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"00DA0184", "<", "secret bytes>", "0044000002" + "3F00", "p.cpf: profile executed on the in-memory card (dry run): 10 APDUs, 3 secrets", "NAME bytes 0..10 of 11 written"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, pin := range []string{"314159", "27182818", hexUpper("314159"), hexUpper("27182818")} {
		if strings.Contains(out+errs, pin) {
			t.Errorf("the output shows the secret %s", pin)
		}
	}

	// Errors: usage, positions, Prepare before any APDU.
	if code, _, _ := cpfRun(t, env, "cpf", "run", prof); code != exitUsage {
		t.Errorf("without --reader: exit %d", code)
	}
	code, _, errs = cpfRun(t, env, "cpf", "run", "--dry-run", "--pin-cert", certFile, prof)
	if code != exitFailure || !strings.Contains(errs, "p.cpf:3:21: SEC_PUK is neither assigned in the profile nor given by the encoding description") {
		t.Errorf("missing secrets: exit %d, %s", code, errs)
	}
	bad := filepath.Join(dir, "bad.cpf")
	os.WriteFile(bad, []byte("CardModel 'X'\nA = ...\n"), 0o600)
	code, _, errs = cpfRun(t, env, "cpf", "run", "--dry-run", bad)
	if code != exitFailure || !strings.Contains(errs, "bad.cpf:2:5: '...' is a placeholder") {
		t.Errorf("syntax error: exit %d, %s", code, errs)
	}
}

func hexUpper(s string) string {
	const d = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(d[s[i]>>4])
		b.WriteByte(d[s[i]&15])
	}
	return b.String()
}

// cpfReadEF reads len(want) bytes of a transparent EF selected by its
// path from the MF, with plain SELECT and READ BINARY.
func cpfReadEF(t testing.TB, card iso7816.Card, n int, path ...uint16) []byte {
	t.Helper()
	var p []byte
	for _, fid := range path {
		p = append(p, byte(fid>>8), byte(fid))
	}
	if _, err := iso7816.Send(card, iso7816.SelectPath(true, path...)); err != nil {
		t.Fatalf("selecting %X: %v", p, err)
	}
	var out []byte
	for len(out) < n {
		cmd, _ := iso7816.ReadBinary(len(out), min(n-len(out), 256))
		b, err := iso7816.Send(card, cmd)
		if err != nil {
			t.Fatalf("reading %X at %d: %v", p, len(out), err)
		}
		if len(b) == 0 {
			t.Fatalf("reading %X at %d: no data", p, len(out))
		}
		out = append(out, b...)
	}
	return out
}

// freshCard restarts the emulator behind reader and connects to it.
// Right after the restart pcscd sometimes still reports no card, or the
// first APDU fails with "Transaction failed" (a power-up race between
// pcscd and vpcd, see the report): it retries for up to 5 s.
func freshCard(t testing.TB, s *stacktest.Stack, reader string) *pcsc.Card {
	t.Helper()
	s.StopCard(t, reader)
	s.StartCard(t, reader)
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for i := 1; ; i++ {
		k, err := pc.Connect(reader, pcsc.Shared)
		if err == nil {
			if _, err = k.Transmit([]byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00}); err == nil {
				t.Cleanup(func() { k.Close() })
				return k
			}
			k.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fresh card in %s does not answer: %v", reader, err)
		}
		t.Logf("attempt %d to reach the fresh card in %s: %v", i, reader, err)
		time.Sleep(100 * time.Millisecond)
	}
}

var seedConfig = cpf.Config{Models: map[string]string{"SIEMENS50": "ISO7816"}}

// TestCPFSeedOnStack runs the seed profile on vicc and on the project's
// own card through pcscd, reads the files back with independent APDUs and
// opens the blob with the right and with another key.
func TestCPFSeedOnStack(t *testing.T) {
	s := stacktest.Require(t)
	seed, err := os.ReadFile("../../cpf/testdata/seed.cpf")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := cpf.Compile("seed.cpf", seed, seedConfig)
	if err != nil {
		t.Fatal(err)
	}
	odf := []byte{0xA4, 0x0A, 0x30, 0x08, 0x04, 0x06, 0x3F, 0x00, 0x50, 0x15, 0x44, 0x41}
	for _, slot := range []string{"READER_VICC_1", "READER_OWN_1"} {
		t.Run(slot, func(t *testing.T) {
			reader := s.Get(t, slot)
			_, cert, key := cpfPINKey(t, t.TempDir())
			plan, err := prog.Prepare(cpf.Params{PINCert: cert})
			if err != nil {
				t.Fatal(err)
			}
			card := freshCard(t, s, reader)
			res, err := plan.Execute(context.Background(), card)
			if err != nil {
				t.Fatalf("executing on %s: %v\n%s", reader, err, cpf.Transcript(res.Transcript))
			}
			if got := cpfReadEF(t, card, len(odf), 0x5015, 0x5031); !bytes.Equal(got, odf) {
				t.Errorf("EFODF = % X, want % X", got, odf)
			}
			cdf := cpfReadEF(t, card, 49, 0x5015, 0x4441)
			if !bytes.HasPrefix(cdf, []byte{0x30, 0x2F, 0x30, 0x1A, 0x0C, 0x11}) || !bytes.HasSuffix(cdf, []byte{0x3F, 0x00, 0x50, 0x15, 0x45, 0x41}) {
				t.Errorf("EFCDF1 = % X", cdf)
			}
			cont := cpfReadEF(t, card, len(plan.PersInfo), 0x5015, 0x4541)
			if !bytes.Equal(cont, plan.PersInfo) {
				t.Errorf("EFCERT1 differs from the personalization content")
			}
			pins, err := pinblob.Open(cont, []pinblob.Key{key})
			if err != nil || len(pins) != 8 {
				t.Fatalf("opening the blob: %d PINs, %v", len(pins), err)
			}
			for _, p := range pins {
				if !plan.Secrets["SEC_"+p.Name].Equal(p.Value) {
					t.Errorf("%s in the blob differs from the generated value", p.Name)
				}
			}
			_, _, other := cpfPINKey(t, t.TempDir())
			if _, err := pinblob.Open(cont, []pinblob.Key{other}); err == nil || !strings.Contains(err.Error(), "no decryption key found matching #") {
				t.Errorf("another key: %v", err)
			}
			// The engine's own read-back (the PIN-letter finalization step).
			path, _ := prog.PersInfoFile()
			back, err := cpf.ReadFile(context.Background(), card, path, 6000)
			if err != nil || !bytes.HasPrefix(back, plan.PersInfo) {
				t.Errorf("cpf.ReadFile: %d bytes, %v", len(back), err)
			} else if pins, err := pinblob.Open(back, []pinblob.Key{key}); err != nil || len(pins) != 8 {
				t.Errorf("opening what cpf.ReadFile read: %d PINs, %v", len(pins), err)
			}
			t.Logf("cpf.ReadFile read %d bytes of EFCERT1 from %s", len(back), reader)
			// The DF is found by its AID too.
			if _, err := iso7816.Send(card, iso7816.SelectAID([]byte("\xA0\x00\x00\x00\x63PKCS-15"))); err != nil {
				t.Errorf("selecting DFPKCS15 by AID: %v", err)
			}
		})
	}
}

// TestCPFEraseOnStack checks the three erase cases on the project's own
// card through pcscd, with cardwright cpf run and cpf erase.
func TestCPFEraseOnStack(t *testing.T) {
	s := stacktest.Require(t)
	reader := s.Get(t, "READER_OWN_2")
	dir := t.TempDir()
	env := map[string]string{"PIN": "1234", "PUK": "87654321"}
	for _, tc := range []struct {
		name            string
		eraseable, fuse bool
		anonymous       bool
	}{
		{"eraseable and fuse", true, true, true},
		{"neither", false, false, true},
		{"fuse only", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "CardModel 'ISO7816'\nCreatePin PUK value=SEC_PUK so=yes\nCreatePin PIN1 value=SEC_PIN1 unblock=PUK\n" +
				"MasterFile\nCreateEf A id=0x1000 maxsize=4 read=always\nEndfile\nFile Static A\ndata = 'abcd'\nEndfile\nCreateFiles()\n"
			if tc.eraseable {
				src = "MakeCardEraseable()\n" + src
			}
			if tc.fuse {
				src += "BurnFuse()\n"
			}
			prof := filepath.Join(dir, "erase.cpf")
			os.WriteFile(prof, []byte(src), 0o600)
			freshCard(t, s, reader).Close()
			code, out, errs := cpfRun(t, env, "cpf", "run", "--reader", reader, "--transcript", "--secret-env", "SEC_PIN1=PIN", "--secret-env", "SEC_PUK=PUK", prof)
			if code != exitOK {
				t.Fatalf("cpf run: exit %d\n%s%s", code, out, errs)
			}
			if !strings.Contains(out, "00DA018408 <") && !strings.Contains(out, "00DA01840D <") {
				t.Errorf("no masked PUT DATA for the PUK in the transcript:\n%s", out)
			}
			for _, v := range []string{"1234", "87654321", hexUpper("1234"), hexUpper("87654321")} {
				if strings.Contains(out+errs, v) {
					t.Errorf("the transcript shows the secret %s", v)
				}
			}
			code, out, errs = cpfRun(t, env, "cpf", "erase", "--reader", reader)
			if tc.anonymous != (code == exitOK) {
				t.Fatalf("anonymous erase: exit %d\n%s%s", code, out, errs)
			}
			if !tc.anonymous {
				if !strings.Contains(errs, "cannot be erased") || !strings.Contains(errs, "6982") {
					t.Errorf("refusal: %s", errs)
				}
				if code, out, errs = cpfRun(t, env, "cpf", "erase", "--reader", reader, "--pin-env", "PIN", "--puk-env", "PUK"); code != exitOK {
					t.Fatalf("erase with the PUK: exit %d\n%s%s", code, out, errs)
				}
			}
			// Erased: the MF is gone.
			if code, _, errs = cpfRun(t, env, "cpf", "erase", "--reader", reader); code != exitFailure || !strings.Contains(errs, "no profile") {
				t.Errorf("second erase: exit %d, %s", code, errs)
			}
		})
	}
}

// recorder keeps the command APDUs sent through it.
type recorder struct {
	iso7816.Card
	cmds [][]byte
}

func (r *recorder) Transmit(cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, append([]byte(nil), cmd...))
	return r.Card.Transmit(cmd)
}

// BenchmarkCPFSeedOnStack is the wall time of the seed profile on each
// virtual card through pcscd. Metrics: apdus; floor-µs/apdu, a SELECT MF
// round trip on the same card (the per-APDU floor of the pcsc benchmarks);
// ratio-floor = wall time / (APDUs × floor), target ≤ 1.10; ratio-replay
// = wall time / the same APDU bytes replayed raw, the engine's own share.
//
//	go test ./cmd/cardwright -run XXX -bench CPFSeedOnStack -benchtime 5x
func BenchmarkCPFSeedOnStack(b *testing.B) {
	s := stacktest.Require(b)
	seed, err := os.ReadFile("../../cpf/testdata/seed.cpf")
	if err != nil {
		b.Fatal(err)
	}
	prog, err := cpf.Compile("seed.cpf", seed, seedConfig)
	if err != nil {
		b.Fatal(err)
	}
	_, cert, _ := cpfPINKey(b, b.TempDir())
	plan, err := prog.Prepare(cpf.Params{PINCert: cert})
	if err != nil {
		b.Fatal(err)
	}
	selectMF := []byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00}
	for _, slot := range []string{"READER_VICC_1", "READER_OWN_1"} {
		b.Run(slot, func(b *testing.B) {
			reader := s.Get(b, slot)
			ctx := context.Background()
			card := freshCard(b, s, reader)
			// undo brings back a card without the profile: the own card
			// erases itself (the seed calls MakeCardEraseable()); vicc
			// keeps DF names of deleted DFs, so it is restarted.
			undo := func() {
				if slot == "READER_OWN_1" {
					if err := cpf.DeleteProfile(ctx, card, nil); err != nil {
						b.Fatal(err)
					}
					return
				}
				card = freshCard(b, s, reader)
			}
			rec := &recorder{}
			const probesPerRun = 10
			var apdus, probes int
			var run, replay, floorSum time.Duration
			for b.Loop() {
				rec.Card, rec.cmds = card, nil
				start := time.Now()
				res, err := plan.Execute(ctx, rec)
				run += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				apdus = res.APDUs
				// Outside the timed part, under the same load: the same
				// APDU bytes replayed raw, and the floor.
				b.StopTimer()
				undo()
				start = time.Now()
				for _, c := range rec.cmds {
					if _, err := card.Transmit(c); err != nil {
						b.Fatal(err)
					}
				}
				replay += time.Since(start)
				undo()
				start = time.Now()
				for range probesPerRun {
					if _, err := card.Transmit(selectMF); err != nil {
						b.Fatal(err)
					}
				}
				floorSum += time.Since(start)
				probes += probesPerRun
				b.StartTimer()
			}
			b.StopTimer()
			floor := floorSum / time.Duration(probes)
			perRun := run / time.Duration(b.N)
			b.ReportMetric(float64(apdus), "apdus")
			b.ReportMetric(float64(floor.Microseconds()), "floor-µs/apdu")
			b.ReportMetric(float64(perRun)/float64(time.Duration(apdus)*floor), "ratio-floor")
			b.ReportMetric(float64(run)/float64(replay), "ratio-replay")
		})
	}
}

// pullingCard stops the card emulator behind the reader before APDU n.
type pullingCard struct {
	iso7816.Card
	n    int
	pull func()
}

func (c *pullingCard) Transmit(cmd []byte) ([]byte, error) {
	if c.n == 0 {
		c.pull()
	}
	c.n--
	return c.Card.Transmit(cmd)
}

// TestCPFCardPulledOnStack takes the own card out of its reader in the
// middle of the seed profile: the error names the statement and what was
// already written, and nothing panics.
func TestCPFCardPulledOnStack(t *testing.T) {
	s := stacktest.Require(t)
	reader := s.Get(t, "READER_OWN_2")
	seed, err := os.ReadFile("../../cpf/testdata/seed.cpf")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := cpf.Compile("seed.cpf", seed, seedConfig)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, _ := cpfPINKey(t, t.TempDir())
	plan, err := prog.Prepare(cpf.Params{PINCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	card := &pullingCard{Card: freshCard(t, s, reader), n: 6, pull: func() { s.StopCard(t, reader) }}
	res, err := plan.Execute(context.Background(), card)
	var ee *cpf.ExecError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v, want an *cpf.ExecError", err)
	}
	// pcscd reports the killed emulator as a removed card, or sometimes
	// first as "Transaction failed" (SCARD_E_NOT_TRANSACTED), which the pcsc
	// adapter does not classify: either way the PC/SC error is in the chain.
	var pe *pcsc.Error
	if !errors.Is(err, iso7816.ErrCardRemoved) && !errors.As(err, &pe) {
		t.Errorf("error %v is neither iso7816.ErrCardRemoved nor a *pcsc.Error", err)
	} else if !errors.Is(err, iso7816.ErrCardRemoved) {
		t.Logf("the removal surfaced as %v", pe)
	}
	if ee.SW != 0 {
		t.Errorf("status word %04X for a transport failure", ee.SW)
	}
	if ee.Pos.Line != 87 || ee.Stmt != "CreateFiles()" || ee.What != "write EFCDF1 bytes 0..48" || len(res.Done) != 5 {
		t.Errorf("error %v, done %q", err, res.Done)
	}
	if !strings.Contains(err.Error(), "seed.cpf:87:1: CreateFiles(): write EFCDF1 bytes 0..48: ") || !strings.Contains(err.Error(), "already written: MF created, DF DFPKCS15 (5015) created") {
		t.Errorf("message %q", err)
	}
}

// TestCPFLifeCycleOnStack runs Deactivate and Terminate on the project's
// own card through pcscd and reads the states back with independent
// SELECTs: 6283 for the deactivated DF, 6285 for the terminated one.
func TestCPFLifeCycleOnStack(t *testing.T) {
	s := stacktest.Require(t)
	reader := s.Get(t, "READER_OWN_2")
	src := "MakeCardEraseable()\nCardModel 'ISO7816'\nCreatePin PUK value=SEC_PUK so=yes\n" +
		"MasterFile create=PUK\nCreateDf SIG id=0x5016 activate=PUK create=PUK\nEndDF\n" +
		"CreateDf UNSOLD id=0x5017 terminate=always\nEndDF\nEndfile\n" +
		"CreateFiles()\nDeactivate(SIG)\nTerminate(UNSOLD)\nBurnFuse()\n"
	prof := filepath.Join(t.TempDir(), "lc.cpf")
	os.WriteFile(prof, []byte(src), 0o600)
	freshCard(t, s, reader).Close()
	env := map[string]string{"PUK": "87654321"}
	code, out, errs := cpfRun(t, env, "cpf", "run", "--reader", reader, "--transcript", "--secret-env", "SEC_PUK=PUK", prof)
	if code != exitOK {
		t.Fatalf("cpf run: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"deactivate DF SIG (5016)\t00040000025016 -> 9000", "terminate DF UNSOLD (5017)\t00E60000025017 -> 9000"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	pc, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	k, err := pc.Connect(reader, pcsc.Shared)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		apdu []byte
		sw   string
	}{
		{[]byte{0x00, 0xA4, 0x08, 0x0C, 0x02, 0x50, 0x16}, "6283"},
		{[]byte{0x00, 0xA4, 0x08, 0x0C, 0x02, 0x50, 0x17}, "6285"},
	} {
		r, err := k.Transmit(tc.apdu)
		if err != nil || len(r) < 2 || hexUpper(string(r[len(r)-2:])) != tc.sw {
			t.Errorf("SELECT %X: %X %v, want SW %s", tc.apdu, r, err, tc.sw)
		}
	}
	k.Close()
	if code, out, errs := cpfRun(t, env, "cpf", "erase", "--reader", reader); code != exitOK {
		t.Errorf("erase: exit %d\n%s%s", code, out, errs)
	}
}
