package cpf

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Dialect is how a card family is driven: which APDUs carry a profile's
// operations and how large they may be.
type Dialect struct {
	Name string
	// MaxNc is the largest command data field the dialect sends; file
	// contents go out in chunks of this size (the fewest APDUs).
	MaxNc int
	// Extended says MaxNc needs extended-length APDUs (ISO/IEC 7816-4 §5.1).
	Extended bool
}

// The generic ISO/IEC 7816-4/-9 dialects: short APDUs, and the same with
// extended length fields for cards that take them.
var dialects = map[string]Dialect{
	"ISO7816":     {Name: "ISO7816", MaxNc: 255},
	"ISO7816-EXT": {Name: "ISO7816-EXT", MaxNc: 0x7FFF, Extended: true},
}

// builtinModels maps the card models every installation knows to a
// dialect. Config.Models adds site-specific ones (e.g. SIEMENS50).
var builtinModels = map[string]string{
	"ISO7816":     "ISO7816",
	"ISO7816-EXT": "ISO7816-EXT",
}

// Config extends the built-in tables; the agent fills it from its
// configuration file.
type Config struct {
	// Models maps card model names (as in CardModel 'NAME', compared
	// without regard to case) to dialect names.
	Models map[string]string
}

// Dialects lists the dialect names.
func Dialects() []string { return slices.Sorted(maps.Keys(dialects)) }

// models returns the merged model table, keys in upper case.
func (c Config) models() map[string]string {
	m := maps.Clone(builtinModels)
	for k, v := range c.Models {
		m[strings.ToUpper(k)] = strings.ToUpper(v)
	}
	return m
}

// Validate reports configured models that name an unknown dialect.
func (c Config) Validate() error {
	for _, k := range slices.Sorted(maps.Keys(c.Models)) {
		if _, ok := dialects[strings.ToUpper(c.Models[k])]; !ok {
			return fmt.Errorf("card model %s maps to unknown dialect %q (known: %s)", k, c.Models[k], strings.Join(Dialects(), ", "))
		}
	}
	return nil
}

// dialectFor resolves a card model.
func (c Config) dialectFor(model string) (Dialect, error) {
	m := c.models()
	name, ok := m[strings.ToUpper(model)]
	if !ok {
		return Dialect{}, fmt.Errorf("unknown card model %q (known: %s)", model, strings.Join(slices.Sorted(maps.Keys(m)), ", "))
	}
	d, ok := dialects[name]
	if !ok {
		return Dialect{}, fmt.Errorf("card model %q maps to unknown dialect %q (known: %s)", model, name, strings.Join(Dialects(), ", "))
	}
	return d, nil
}
