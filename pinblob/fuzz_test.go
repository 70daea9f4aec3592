package pinblob

import (
	"crypto/rand"
	"testing"
)

// FuzzOpen feeds card file contents to Open with an RSA and an EC key: no
// input may panic, and whatever opens carries only valid, distinct names.
func FuzzOpen(f *testing.F) {
	keys := []Key{loadKey(f, "rsa2048"), loadKey(f, "p256"), loadKey(f, "p384")}
	for _, k := range keys {
		c, err := Seal(rand.Reader, k.Certificate(), testPINs())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
		blob, _ := FindDataObject(c, Label)
		f.Add(blob)
		f.Add(c[:len(c)/2])
	}
	other, _ := MarshalDataObject("Public key", []byte{1, 2, 3})
	f.Add(other)
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{0x30, 0x80, 0x0c, 0x00})
	f.Fuzz(func(t *testing.T, content []byte) {
		pins, err := Open(content, keys)
		if err != nil {
			if pins != nil {
				t.Fatal("PINs and an error")
			}
			return
		}
		if len(pins) == 0 {
			t.Fatal("opened to no PINs without an error")
		}
		seen := map[string]bool{}
		for _, p := range pins {
			if !ValidName(p.Name) || seen[p.Name] {
				t.Fatalf("opened to name %q", p.Name)
			}
			seen[p.Name] = true
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []string{"rsa2048", "p256", "p384"} {
		k := loadKey(b, n)
		pins := testPINs()
		b.Run(n, func(b *testing.B) {
			for b.Loop() {
				if _, err := Seal(rand.Reader, k.Certificate(), pins); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []string{"rsa2048", "p256", "p384"} {
		k := loadKey(b, n)
		c, err := Seal(rand.Reader, k.Certificate(), testPINs())
		if err != nil {
			b.Fatal(err)
		}
		ring := []Key{loadKey(b, "rsa2048b"), loadKey(b, "p521"), k}
		b.Run(n, func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(c, ring); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
