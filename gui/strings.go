package gui

import (
	"embed"
	"sync"

	"fyne.io/fyne/v2/lang"

	_ "github.com/cardwright/cardwright/gui/langenv" // a language Fyne can parse, before it reads the locale
)

// Every string the windows show goes through Fyne's lang package (spec/gui.md,
// "Languages"): lang.X with a key and the English text as fallback, lang.XN
// where the words follow a number. The translations are the JSON files in
// translations/, one per language (go-i18n's format: a key maps to its text,
// or to its "one" and "other" forms), sorted by key.

//go:embed translations/*.json
var translations embed.FS

var loadOnce struct {
	sync.Once
	err error
}

// LoadTranslations adds the English, German and Swedish strings to Fyne's
// and chooses the language from the OS locale (LANGUAGE, LC_ALL,
// LC_MESSAGES, LANG on Linux). Only the first call loads; later ones return
// its result. Call it before the first window opens.
func LoadTranslations() error {
	loadOnce.Do(func() { loadOnce.err = loadTranslations() })
	return loadOnce.err
}

// loadTranslations adds the files to lang's bundle. Adding makes lang read
// the OS locale again, which is the only way Fyne 2.7 offers to change the
// language after start (lang.setupLang is unexported): the tests set LANG
// and call this again.
func loadTranslations() error {
	return lang.AddTranslationsFS(translations, "translations")
}
