package dsc

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"io/fs"
	"strings"
	"testing"
)

type zentry struct {
	name string
	data []byte
}

func makeZip(t testing.TB, entries ...zentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const bundleDSC = "[Fields]\nv=\n[Description]\nInitToken=true\nChipProfile=Profile.cpf\nProfileParameters=v\nApduFile=run.apdu\n"

func TestOpenDSZ(t *testing.T) {
	z := makeZip(t,
		zentry{"job/", nil},
		zentry{"job/encoding.dsc", []byte(bundleDSC)},
		zentry{"job/profile.cpf", []byte("; p\n")},
		zentry{"job/run.apdu", []byte("00A4000C023F00\n")},
	)
	for name, data := range map[string][]byte{
		"zip":            z,
		"base64":         []byte(base64.StdEncoding.EncodeToString(z)),
		"base64 wrapped": []byte(wrap(base64.StdEncoding.EncodeToString(z), 76)),
		"base64url":      []byte(base64.RawURLEncoding.EncodeToString(z)),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := OpenDSZ(data)
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != "job/encoding.dsc" || string(b.Description) != bundleDSC || len(b.Files) != 2 {
				t.Fatalf("bundle %q %d files", b.Name, len(b.Files))
			}
			// Case-insensitive fallback: the description says Profile.cpf.
			if src, err := fs.ReadFile(b, "Profile.cpf"); err != nil || string(src) != "; p\n" {
				t.Fatalf("ReadFile: %q %v", src, err)
			}
			d, diags := b.Load(CheckOptions{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			p, err := NewPlan(d, Job{Files: b, Fields: map[string]string{"v": "AA=="}})
			if err != nil {
				t.Fatal(err)
			}
			if string(stepAs[*InitProfileStep](t, p, 1).Init.ProfileSource) != "; p\n" || len(stepAs[*ApduScriptStep](t, p, 2).Script.Commands) != 1 {
				t.Fatalf("%+v", p.Steps)
			}
		})
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	return b.String() + s
}

func TestDSZMissingReferencedFile(t *testing.T) {
	b, err := OpenDSZ(makeZip(t, zentry{"a.dsc", []byte(bundleDSC)}, zentry{"profile.cpf", []byte("x")}))
	if err != nil {
		t.Fatal(err)
	}
	_, diags := b.Load(CheckOptions{})
	if got := diags.Errors(); len(got) != 1 || !strings.Contains(got[0].Msg, "ApduFile: file run.apdu not found") || got[0].Pos.Line != 7 {
		t.Fatalf("got %v", diags)
	}
}

// rawZip writes one entry whose header claims size bytes while the data
// inflates to much more.
func rawZip(t *testing.T, name string, claimed uint64, content []byte) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(content)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(content),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: claimed})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

func TestOpenDSZRefuses(t *testing.T) {
	big := bytes.Repeat([]byte{0}, MaxDSZFile+10)
	almost := bytes.Repeat([]byte{'a'}, MaxDSZFile-1)
	dsc := zentry{"a.dsc", []byte("[Description]\n")}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"parent", makeZip(t, dsc, zentry{"../evil.cpf", []byte("x")}), "path leaves the container"},
		{"nested parent", makeZip(t, dsc, zentry{"a/../../evil.cpf", []byte("x")}), "path leaves the container"},
		{"backslash parent", makeZip(t, dsc, zentry{`..\evil.cpf`, []byte("x")}), "path leaves the container"},
		{"absolute", makeZip(t, dsc, zentry{"/etc/evil.cpf", []byte("x")}), "absolute path"},
		{"drive", makeZip(t, dsc, zentry{"C:/evil.cpf", []byte("x")}), "drive path"},
		{"no dsc", makeZip(t, zentry{"p.cpf", []byte("x")}), "no .dsc file"},
		{"two dsc", makeZip(t, dsc, zentry{"b.DSC", []byte("x")}), "several .dsc files in the container: a.dsc, b.DSC"},
		{"bomb", makeZip(t, dsc, zentry{"p.cpf", big}), "bytes uncompressed, more than"},
		{"lying header", rawZip(t, "p.dsc", 100, big), "reading p.dsc: zip: not a valid zip file"}, // archive/zip stops at the claimed size
		{"total", makeZip(t, dsc, zentry{"1", almost}, zentry{"2", almost}, zentry{"3", almost}, zentry{"4", almost}, zentry{"5", almost}), "in all"},
		{"not zip", []byte("PK garbage"), "reading zip"},
		{"not base64", []byte("%%%"), "neither a zip nor base64"},
		{"base64 of garbage", []byte(base64.StdEncoding.EncodeToString([]byte("hello"))), "reading zip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenDSZ(tc.data)
			if err == nil || !errors.Is(err, ErrDSZ) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
