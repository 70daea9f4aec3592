package cpf

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/pinblob"
	"github.com/cardwright/cardwright/secret"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

// fakeSeal replaces pinblob.Seal so transcripts are reproducible: the
// data object holds the names of the sealed secrets, not their values.
func fakeSeal(_ io.Reader, _ *x509.Certificate, pins []pinblob.PIN) ([]byte, error) {
	var names []string
	for _, p := range pins {
		names = append(names, p.Name)
	}
	return pinblob.MarshalDataObject(pinblob.Label, []byte("sealed:"+strings.Join(names, ",")))
}

func withFakeSeal(t *testing.T) {
	old := sealPINs
	sealPINs = fakeSeal
	t.Cleanup(func() { sealPINs = old })
}

// testCert stands for the PIN-encryption certificate under fakeSeal.
var testCert = &x509.Certificate{RawSubjectPublicKeyInfo: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}

// seededRand is a reproducible random source.
func seededRand(seed byte) io.Reader { return mathrand.NewChaCha8([32]byte{seed}) }

// goldenCase reads the parts of a txtar case: profile.cpf, params (lines
// "model NAME=DIALECT", "param NAME=BASE64", "secret NAME=VALUE",
// "card extended", "card with-mf") and transcript.
type goldenCase struct {
	profile  []byte
	cfg      Config
	params   Params
	cardCfg  memcard.Config
	withMF   bool // the card has an MF already, as vicc has
	expected []byte
}

func readGolden(t *testing.T, path string) (*txtar.Archive, goldenCase) {
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gc := goldenCase{cfg: Config{Models: map[string]string{}},
		params: Params{Values: map[string][]byte{}, Secrets: map[string]secret.Value{}, PINCert: testCert, Rand: seededRand(1)}}
	for _, f := range ar.Files {
		switch f.Name {
		case "profile.cpf":
			gc.profile = f.Data
		case "transcript":
			gc.expected = f.Data
		case "params":
			for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
				k, v, _ := strings.Cut(rest, "=")
				switch kind {
				case "model":
					gc.cfg.Models[k] = v
				case "param":
					b, err := base64.StdEncoding.DecodeString(v)
					if err != nil {
						t.Fatalf("param %s: %v", k, err)
					}
					gc.params.Values[k] = b
				case "secret":
					gc.params.Secrets[k] = secret.New(v)
				case "card":
					switch rest {
					case "extended":
						gc.cardCfg.Extended = true
					case "with-mf":
						gc.withMF = true
					default:
						t.Fatalf("params: unknown card option %q", rest)
					}
				case "":
				default:
					t.Fatalf("params: unknown line %q", line)
				}
			}
		}
	}
	return ar, gc
}

func TestGolden(t *testing.T) {
	withFakeSeal(t)
	files, _ := filepath.Glob("testdata/golden/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden cases")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ar, gc := readGolden(t, path)
			prog, err := Compile("profile.cpf", gc.profile, gc.cfg)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			plan, err := prog.Prepare(gc.params)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			card := memcard.New(gc.cardCfg)
			if gc.withMF {
				cmd, _ := iso7816.CreateFile(iso7816.FCP{FDB: iso7816.FDBDF, FID: iso7816.MFID})
				if _, err := iso7816.Send(card, cmd); err != nil {
					t.Fatal(err)
				}
				card.ClearTranscript()
			}
			res, err := plan.Execute(context.Background(), card)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			got := []byte(Transcript(res.Transcript))
			for name, v := range plan.Secrets {
				if bytes.Contains(got, v.Bytes()) && v.Len() >= 4 {
					t.Errorf("the transcript shows the value of %s", name)
				}
			}
			if res.APDUs != len(res.Transcript) {
				t.Errorf("%d APDUs transmitted for %d steps", res.APDUs, len(res.Transcript))
			}
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "transcript" {
						ar.Files[i].Data = got
					}
				}
				if gc.expected == nil {
					ar.Files = append(ar.Files, txtar.File{Name: "transcript", Data: got})
				}
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, gc.expected) {
				t.Errorf("transcript differs (go test -run TestGolden -update to accept):\n got:\n%s\nwant:\n%s", got, gc.expected)
			}
		})
	}
}
