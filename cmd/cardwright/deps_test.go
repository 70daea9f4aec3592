package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps main to choosing implementations (ARCHITECTURE.md rule
// 6): the PC/SC and PKCS#11 libraries are reached only through their
// adapters (pcsc, p11 and the packages beside the runner's ports), never
// imported by main itself.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "github.com/ebfe/scard", "github.com/miekg/pkcs11":
			t.Errorf("cmd/cardwright imports %s; use its adapter package", p)
		}
	}
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
