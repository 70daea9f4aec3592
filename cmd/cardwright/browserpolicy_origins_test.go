package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBrowserPolicyOriginList: one --origin value may hold several origins
// separated by commas or white space (the MSI's BROWSER_POLICY_ORIGINS arrives
// as one value); each is still checked, and a value without any is refused
// instead of falling back to the configuration's origins.
func TestBrowserPolicyOriginList(t *testing.T) {
	var l originList
	for _, v := range []string{"https://a.example", " https://b.example,https://c.example:8443\thttps://d.example ,"} {
		if err := l.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got, want := l.String(), "https://a.example,https://b.example,https://c.example:8443,https://d.example"; got != want {
		t.Fatalf("origins %q, want %q", got, want)
	}
	for _, v := range []string{"", " ", " , \t"} {
		if err := l.Set(v); err == nil {
			t.Errorf("Set(%q) accepted a value without an origin", v)
		}
	}

	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := browserPolicyCmd.dispatch(context.Background(), env, args)
		return code, out.String() + errb.String()
	}
	code, out := run("show", "--origin", "https://cms.example.com https://other.example", "--config", "/dev/null")
	if code != exitOK || !strings.Contains(out, "  https://cms.example.com: ") || !strings.Contains(out, "  https://other.example: ") {
		t.Fatalf("show with two origins in one value: exit %d\n%s", code, out)
	}
	for _, v := range []string{" ", "https://cms.example.com https://Other.example", "https://cms.example.com/portal"} {
		if code, out := run("show", "--origin", v, "--config", "/dev/null"); code != exitUsage {
			t.Errorf("show --origin %q: exit %d, want %d (usage)\n%s", v, code, exitUsage, out)
		}
	}
}
