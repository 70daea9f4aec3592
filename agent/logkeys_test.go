package agent_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
	"github.com/cardwright/cardwright/internal/jsonline"
)

// checkLogLines fails the test for any line of out that is not one JSON
// object with unique keys.
func checkLogLines(t *testing.T, out string) {
	t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		n++
		if err := jsonline.Check(l); err != nil {
			t.Errorf("log line %d: %v:\n%s", n, err, l)
		}
	}
	if n == 0 {
		t.Error("no log lines")
	}
}

// TestLogLinesAreJSONWithUniqueKeys: the agent's log during refused jobs,
// request errors, a job and shutdown is one JSON object per line with no
// key twice (a refused job used to log msg twice).
func TestLogLinesAreJSONWithUniqueKeys(t *testing.T) {
	ta := startAgent(t)
	ctx := ctxT(t)
	c := ta.dial(client.Options{ClientTag: "logtest", Trace: schemaTraceReceived(t)})
	if _, err := c.Submit(ctx, &api.Job{Description: "x", DSZ: "eA=="}); err == nil {
		t.Fatal("a job with both description and dsz was accepted")
	}
	if _, err := c.Submit(ctx, &api.Job{DSZ: "not base64"}); err == nil {
		t.Fatal("a job with a bad dsz was accepted")
	}
	if err := c.Ack(ctx, "nope"); err == nil {
		t.Fatal("ack of an unknown job succeeded")
	}
	if res, err := c.Run(ctx, &api.Job{Description: "x", Fields: map[string]string{"Fail": "card_error"}}, nil, nil); err != nil || res.OK {
		t.Fatalf("failing job: %+v %v", res, err)
	}
	raw := rawDial(t, ta, testOrigin)
	raw.send(t, `{"type":"hello","id":1}`)
	closeCode(t, raw.ws)
	c.Close()
	<-c.Done()
	waitFor(t, func() bool { return strings.Contains(ta.log.String(), `"msg":"connection closed"`) })
	out := ta.log.String()
	if !strings.Contains(out, `"msg":"job refused"`) {
		t.Fatalf("no refused job in the log:\n%s", out)
	}
	checkLogLines(t, out)
}

// builtinKeys are the keys log/slog's handlers write themselves
// (slog.TimeKey, LevelKey, MessageKey, SourceKey).
var builtinKeys = map[string]bool{"time": true, "level": true, "msg": true, "source": true}

// TestNoLogAttributeNamedLikeABuiltinKey: no slog call in the module
// passes an attribute whose key is one the handler writes itself; JSON
// readers keep only one of two equal keys. It looks at every logging
// call (Debug, Info, Warn, Error, their Context forms, Log, With) and at
// slog.String/Int/Any/… and slog.Group attributes.
func TestNoLogAttributeNamedLikeABuiltinKey(t *testing.T) {
	root := filepath.Join("..")
	logFuncs := map[string]int{ // name -> index of the first key/value argument
		"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
		"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
		"Log": 3, "With": 0,
	}
	attrFuncs := map[string]bool{"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
		"Bool": true, "Time": true, "Duration": true, "Any": true, "Group": true}
	fset := token.NewFileSet()
	files := 0
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			check := func(e ast.Expr) {
				lit, ok := e.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return
				}
				if k, err := strconv.Unquote(lit.Value); err == nil && builtinKeys[k] {
					bad = append(bad, fmt.Sprintf("%s: %s(… %q …)", fset.Position(lit.Pos()), sel.Sel.Name, k))
				}
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "slog" && attrFuncs[sel.Sel.Name] {
				if len(call.Args) > 0 {
					check(call.Args[0])
				}
				return true
			}
			first, ok := logFuncs[sel.Sel.Name]
			if !ok || len(call.Args) <= first {
				return true
			}
			// Keys sit at even offsets from the first attribute argument
			// unless an slog.Attr comes in between; checking every string
			// literal there that is not a value after a key would need
			// types, so check keys by position, stopping at a non-literal
			// key (an Attr), after which positions no longer tell.
			for i := first; i < len(call.Args); i += 2 {
				if _, ok := call.Args[i].(*ast.BasicLit); !ok {
					break
				}
				check(call.Args[i])
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("looked at only %d files under %s", files, root)
	}
	if len(bad) > 0 {
		t.Fatalf("log attributes named like a built-in key:\n%s", strings.Join(bad, "\n"))
	}
}
