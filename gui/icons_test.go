package gui

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2/test"
)

// TestIcons: each state has its own 64×64 PNG; the goldens in testdata/
// show them (tray_icon_*.png).
func TestIcons(t *testing.T) {
	seen := map[string]IconState{}
	for s, name := range map[IconState]string{IconIdle: "idle", IconWorking: "working", IconAttention: "attention", IconError: "error"} {
		r := Icon(s)
		img, err := png.Decode(bytes.NewReader(r.Content()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != iconSize || b.Dy() != iconSize {
			t.Errorf("%s: %v, want %d×%d", name, b, iconSize, iconSize)
		}
		if o, dup := seen[string(r.Content())]; dup {
			t.Errorf("%s looks like %d", name, o)
		}
		seen[string(r.Content())] = s
		golden := "tray_icon_" + name + ".png"
		if updating() {
			if err := os.WriteFile(filepath.Join("testdata", golden), r.Content(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		test.AssertImageMatches(t, golden, img)
	}
	if Icon(IconState(99)) != Icon(IconError) {
		t.Error("an unknown state does not get the error icon")
	}
}
