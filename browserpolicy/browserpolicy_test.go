package browserpolicy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tree writes files under a temporary root and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// snapshot maps every file under dir to its bytes.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			m[rel] = string(b)
		}
		return nil
	})
	return m
}

func target(root, browser string) Target {
	for _, t := range LinuxTargets(root) {
		if t.Browser == browser {
			return t
		}
	}
	panic(browser)
}

// TestChromiumRoundTrip: install writes our file alone (a foreign policy
// file in the folder stays byte for byte), is idempotent, replaces its own
// origins, and uninstall removes only our file.
func TestChromiumRoundTrip(t *testing.T) {
	foreign := `{"HomepageLocation": "https://intranet.example", "LocalNetworkAccessAllowedForUrls": ["https://printers.example"]}`
	root := tree(t, map[string]string{"etc/chromium/policies/managed/site.json": foreign})
	tg := target(root, "Chromium")
	before := snapshot(t, tg.Path)
	origins := []string{"https://cms.example.com", "https://cms2.example.com:8443"}
	if ch, err := Install(tg, origins); err != nil || !ch {
		t.Fatalf("install: %v %v", ch, err)
	}
	if ch, err := Install(tg, origins); err != nil || ch {
		t.Fatalf("second install changed something: %v %v", ch, err)
	}
	b, _ := os.ReadFile(filepath.Join(tg.Path, FileName))
	var got map[string][]string
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, map[string][]string{PolicyLoopback: origins}) {
		t.Fatalf("our file: %s (%v)", b, err)
	}
	st, err := Inspect(tg)
	if err != nil || !reflect.DeepEqual(st.Ours, origins) || len(st.Others) != 1 || !strings.Contains(st.Others[0], "printers.example") {
		t.Fatalf("inspect: %+v %v", st, err)
	}
	if v := st.Verdict("https://cms.example.com"); !strings.Contains(v, "without asking") {
		t.Errorf("verdict %q", v)
	}
	if v := st.Verdict("https://other.example"); !strings.Contains(v, "asks the user") {
		t.Errorf("verdict for an origin not listed: %q", v)
	}
	if ch, err := Install(tg, origins[:1]); err != nil || !ch {
		t.Fatalf("install of fewer origins: %v %v", ch, err)
	}
	if ch, err := Uninstall(tg); err != nil || !ch {
		t.Fatalf("uninstall: %v %v", ch, err)
	}
	if ch, err := Uninstall(tg); err != nil || ch {
		t.Fatalf("second uninstall: %v %v", ch, err)
	}
	if after := snapshot(t, tg.Path); !reflect.DeepEqual(after, before) {
		t.Fatalf("folder after uninstall %v, want %v", after, before)
	}
}

// TestFirefoxMerge: our hosts join an administrator's policies.json, whose
// other policies and member order stay; uninstall gives back the same
// policies (only whitespace may differ) and deletes our record.
func TestFirefoxMerge(t *testing.T) {
	admin := `{"policies": {"DisableTelemetry": true, "LocalNetworkAccess": {"Enabled": true, "SkipDomains": ["printers.example"]}, "Homepage": {"URL": "https://intranet.example", "Locked": true}}}`
	root := tree(t, map[string]string{"etc/firefox/policies/policies.json": admin})
	tg := target(root, "Firefox")
	origins := []string{"https://cms.example.com", "https://printers.example:8443"}
	if ch, err := Install(tg, origins); err != nil || !ch {
		t.Fatalf("install: %v %v", ch, err)
	}
	if ch, err := Install(tg, origins); err != nil || ch {
		t.Fatalf("second install changed something: %v %v", ch, err)
	}
	b, _ := os.ReadFile(tg.Path)
	list, err := skipDomains(b)
	if err != nil || !reflect.DeepEqual(list, []string{"printers.example", "cms.example.com"}) {
		t.Fatalf("SkipDomains %q (%v) in\n%s", list, err, b)
	}
	if i, j := bytes.Index(b, []byte("DisableTelemetry")), bytes.Index(b, []byte("Homepage")); i < 0 || j < i {
		t.Fatalf("member order changed:\n%s", b)
	}
	st, err := Inspect(tg)
	if err != nil || !reflect.DeepEqual(st.Ours, []string{"cms.example.com"}) || len(st.Others) != 1 {
		t.Fatalf("inspect: %+v %v", st, err)
	}
	if ch, err := Uninstall(tg); err != nil || !ch {
		t.Fatalf("uninstall: %v %v", ch, err)
	}
	b, _ = os.ReadFile(tg.Path)
	if !jsonEqual(t, b, []byte(admin)) {
		t.Fatalf("after uninstall:\n%s\nwant\n%s", b, admin)
	}
	if _, err := os.Stat(recordPath(tg.Path)); !os.IsNotExist(err) {
		t.Fatalf("record left: %v", err)
	}
}

// TestFirefoxNoFile: with no policies.json, install creates it and
// uninstall removes it again; a broken policies.json is refused, untouched.
func TestFirefoxNoFile(t *testing.T) {
	root := t.TempDir()
	tg := target(root, "Firefox")
	if _, err := Install(tg, []string{"https://cms.example.com"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(tg.Path)
	if !jsonEqual(t, b, []byte(`{"policies":{"LocalNetworkAccess":{"SkipDomains":["cms.example.com"]}}}`)) {
		t.Fatalf("created:\n%s", b)
	}
	if _, err := Uninstall(tg); err != nil {
		t.Fatal(err)
	}
	if m := snapshot(t, root); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
	broken := `{"policies": {"Homepage": `
	root = tree(t, map[string]string{"etc/firefox/policies/policies.json": broken})
	tg = target(root, "Firefox")
	if _, err := Install(tg, []string{"https://cms.example.com"}); err == nil {
		t.Fatal("a broken policies.json was accepted")
	}
	if m := snapshot(t, root); len(m) != 1 || m["etc/firefox/policies/policies.json"] != broken {
		t.Fatalf("a broken policies.json was changed: %v", m)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v in %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}

// TestRegistryList: the Windows list logic — our origins under free
// numbers beside an administrator's, and only ours deleted.
func TestRegistryList(t *testing.T) {
	list := map[string]string{"1": "https://admin.example", "3": "https://other.example"}
	add := listAdd(list, []string{"https://admin.example", "https://cms.example.com", "https://cms2.example.com"})
	if !reflect.DeepEqual(add, map[string]string{"2": "https://cms.example.com", "4": "https://cms2.example.com"}) {
		t.Fatalf("add %v", add)
	}
	for n, o := range add {
		list[n] = o
	}
	list["4"] = "https://changed-by-admin.example"
	if del := listRemove(list, add); !slices.Equal(del, []string{"2"}) {
		t.Fatalf("delete %v", del)
	}
}

func TestInstallNoOrigins(t *testing.T) {
	if _, err := Install(target(t.TempDir(), "Chromium"), nil); err == nil {
		t.Fatal("no error for no origins")
	}
}

// FuzzFirefoxMerge: for any policies.json object, add then remove gives
// back the same JSON value, and never fails after a successful parse.
func FuzzFirefoxMerge(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"policies":{}}`, `{"policies":{"LocalNetworkAccess":{"SkipDomains":["a.example"]}}}`,
		`{"policies":{"LocalNetworkAccess":{"SkipDomains":[1,"cms.example.com",null]}},"x":[1,2]}`,
		`{"a":1,"a":2}`, `{"policies":[]}`, `{"policies":{"LocalNetworkAccess":{"SkipDomains":"x"}}}`,
	} {
		f.Add([]byte(s), "cms.example.com")
	}
	f.Fuzz(func(t *testing.T, b []byte, host string) {
		if _, err := parseObject(b); err != nil {
			return
		}
		var orig any
		if json.Unmarshal(b, &orig) != nil {
			return
		}
		out, rec, err := firefoxAdd(b, []string{host})
		if err != nil {
			return // a policies or SkipDomains of the wrong type: refused
		}
		var mid any
		if err := json.Unmarshal(out, &mid); err != nil {
			t.Fatalf("added file is not JSON: %v\n%s", err, out)
		}
		back, err := firefoxRemove(out, rec)
		if err != nil {
			t.Fatalf("remove: %v", err)
		}
		var got any
		if err := json.Unmarshal(back, &got); err != nil {
			t.Fatalf("%v\n%s", err, back)
		}
		if !reflect.DeepEqual(got, orig) {
			t.Fatalf("round trip changed the file:\n%s\n->\n%s\n->\n%s", b, out, back)
		}
	})
}
