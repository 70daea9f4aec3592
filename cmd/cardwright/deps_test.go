package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/cardwright/cardwright/internal/depcheck"
)

// TestImports keeps main to choosing implementations (ARCHITECTURE.md rule
// 6): the PC/SC and PKCS#11 libraries are reached only through their
// adapters (pcsc, p11 and the packages beside the runner's ports), never
// imported by main itself. Nor does the binary carry test code (rule 3):
// agent/agenttest, which serve --fake-runner uses, must not import testing.
func TestImports(t *testing.T) {
	cmd := []string{depcheck.Module + "/cmd/cardwright"}
	depcheck.NeverImports(t, cmd, "github.com/ebfe/scard", "github.com/miekg/pkcs11")
	depcheck.Never(t, cmd, "testing")
}

// TestNoGUIBuild: the server binary built with -tags nogui links no Fyne,
// no OpenGL and no X11 binding (spec/gui.md, "Modes of the one binary"),
// and no package but gui imports Fyne (ARCHITECTURE.md: gui is its only
// importer); gui/link, which the agent side uses, stays free of it too.
func TestNoGUIBuild(t *testing.T) {
	fyne := []string{"fyne.io/...", "github.com/go-gl/...", "github.com/godbus/..."}
	depcheck.NeverWithTags(t, "nogui", []string{depcheck.Module + "/cmd/cardwright"}, fyne...)
	depcheck.Never(t, []string{depcheck.Module + "/gui/link", depcheck.Module + "/agent/...", depcheck.Module + "/runner/...", depcheck.Module + "/prompt"}, fyne...)
	depcheck.NeverImports(t, []string{depcheck.Module + "/cmd/...", depcheck.Module + "/agent/...", depcheck.Module + "/runner/...", depcheck.Module + "/signing/...", depcheck.Module + "/gui/link"}, "fyne.io/...")
}

// TestWireOnlyWires: wire.go chooses and connects adapters; it declares no
// method, so no adapter is implemented in main (the GUI, which cannot
// import main, shares them).
func TestWireOnlyWires(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "wire.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil {
			continue
		}
		recv := fd.Recv.List[0].Type
		if st, ok := recv.(*ast.StarExpr); ok {
			recv = st.X
		}
		t.Errorf("wire.go declares method %s.%s: an adapter belongs beside its port, not in main", recvName(recv), fd.Name.Name)
	}
}

func recvName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}
