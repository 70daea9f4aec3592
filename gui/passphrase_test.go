package gui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/cardwright/cardwright/prompt"
)

// TestPassphraseDialog: a soft token's passphrase dialog (prompt.Passphrase)
// names the origin and the token, says when the passphrase before was
// wrong, and lets the user choose the store; the answer carries the
// passphrase and the chosen store's id.
func TestPassphraseDialog(t *testing.T) {
	r := prompt.Request{Kind: prompt.Passphrase, Operation: prompt.OpSoftToken, Label: "passphrase",
		Origin: "https://portal.example", Card: "Alice (signing)", Retry: true,
		Stores: []prompt.Choice{{ID: "agent", Text: "cardwright's soft-token store"}, {ID: "nss", Text: "the browser's certificate store"}}}
	_, d, got, _ := openTestPIN(t, r)
	c := d.w.Canvas()
	text := strings.Join(labelTexts(d.w.Content()), "\n")
	for _, want := range []string{"Enter passphrase", "https://portal.example", "Alice (signing)", "Store a soft token", "was wrong", "Store in"} {
		if !strings.Contains(text, want) {
			t.Errorf("dialog lacks %q:\n%s", want, text)
		}
	}
	if len(d.fields) != 1 || d.stores == nil || d.stores.Selected != r.Stores[0].Text {
		t.Fatalf("fields %d, stores %v", len(d.fields), d.stores)
	}
	test.Tap(d.ok) // nothing typed: no answer yet
	if got.n != 0 {
		t.Fatal("answered an empty passphrase")
	}
	d.stores.SetSelected(r.Stores[1].Text)
	c.Focus(d.fields[0].entry)
	typeRunes(t, c, "correct horse battery")
	pressKey(c, fyne.KeyReturn)
	if got.n != 1 || got.err != nil || got.a.PIN.Reveal() != "correct horse battery" || got.a.Store != "nss" {
		t.Fatalf("%d replies, err %v, store %q", got.n, got.err, got.a.Store)
	}
	assertWiped(t, d)
}
