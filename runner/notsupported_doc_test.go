package runner_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotSupportedListed: every use of api.CodeNotSupported in the
// runner's code is named, by its enclosing function (or variable), in
// docs/runner.md's "Refused with `not_supported`" list, so no refusal goes
// undocumented (docs/dsc.md describes no key as understood that the runner
// refuses).
func TestNotSupportedListed(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "runner.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, _, _ := strings.Cut(string(doc[strings.Index(string(doc), "## Refused with `not_supported`")+1:]), "\n## ")
	if !strings.HasPrefix(section, "# Refused") {
		t.Fatal("docs/runner.md has no section \"Refused with `not_supported`\"")
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			var where string
			switch d := d.(type) {
			case *ast.FuncDecl:
				where = d.Name.Name
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					if vs, ok := sp.(*ast.ValueSpec); ok && len(vs.Names) > 0 {
						where = vs.Names[0].Name
					}
				}
			}
			ast.Inspect(d, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "CodeNotSupported" {
					return true
				}
				found++
				if !strings.Contains(section, "`"+where+"`") {
					t.Errorf("%s: not_supported in %s is not listed in docs/runner.md (\"Refused with `not_supported`\")", fset.Position(sel.Pos()), where)
				}
				return true
			})
		}
	}
	if found == 0 {
		t.Fatal("no use of api.CodeNotSupported found: the test reads the wrong files")
	}
}
