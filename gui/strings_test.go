package gui

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// translationFile reads translations/<lang>.json: each key's text (a
// string, or the map of plural forms) and the keys in file order.
func translationFile(t *testing.T, lang string) (map[string]any, []string) {
	t.Helper()
	b, err := translations.ReadFile("translations/" + lang + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var texts map[string]any
	if err := json.Unmarshal(b, &texts); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	var order []string
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.Token() // {
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%s.json: %v", lang, err)
		}
		order = append(order, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s.json: %v", lang, err)
		}
	}
	return texts, order
}

// TestTranslations: English, German and Swedish have the same keys, the
// same plural forms, sorted and each key once, and they load.
func TestTranslations(t *testing.T) {
	if err := LoadTranslations(); err != nil {
		t.Fatal(err)
	}
	en, _ := translationFile(t, "en")
	for _, lang := range []string{"en", "de", "sv"} {
		texts, order := translationFile(t, lang)
		if !slices.IsSorted(order) || len(order) != len(texts) {
			t.Errorf("%s.json: keys not sorted or repeated", lang)
		}
		for k, v := range texts {
			if _, ok := en[k]; !ok {
				t.Errorf("%s.json: %q is not in en.json", lang, k)
			}
			if p, ok := v.(map[string]any); ok && !slices.Equal(slices.Sorted(maps.Keys(p)), []string{"one", "other"}) {
				t.Errorf("%s.json: %q has plural forms %v, want one and other", lang, k, slices.Sorted(maps.Keys(p)))
			}
		}
		for k, v := range en {
			w, ok := texts[k]
			if !ok {
				t.Errorf("%s.json lacks %q", lang, k)
			} else if reflect.TypeOf(w) != reflect.TypeOf(v) {
				t.Errorf("%s.json: %q is plural in one language and not in the other", lang, k)
			}
		}
	}
}

// TestTranslationKeys: every lang.X and lang.XN call of the package names a
// key that en.json has, with the fallback text en.json gives (the plural's
// "other" form), so the fallback and the file say the same.
func TestTranslationKeys(t *testing.T) {
	en, _ := translationFile(t, "en")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "lang" || (sel.Sel.Name != "X" && sel.Sel.Name != "XN") {
				return true
			}
			key, ok1 := stringLit(call.Args[0])
			fallback, ok2 := stringLit(call.Args[1])
			if !ok1 || !ok2 {
				return true // a computed key: nothing to check here
			}
			want, ok := en[key]
			if p, plural := want.(map[string]any); plural {
				want = p["other"]
			}
			if !ok {
				t.Errorf("%s: lang.%s(%q, …): en.json lacks the key", fset.Position(call.Pos()), sel.Sel.Name, key)
			} else if want != fallback {
				t.Errorf("%s: lang.%s(%q, %q): en.json has %q", fset.Position(call.Pos()), sel.Sel.Name, key, fallback, want)
			}
			return true
		})
	}
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
