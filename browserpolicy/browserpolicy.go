// Package browserpolicy owns the browsers' managed policies that let named
// portal origins reach the agent on 127.0.0.1 without Local Network Access
// (LNA) prompts (docs/protocol.md, "Local Network Access").
//
// A public https page that opens ws://127.0.0.1 is a local network request
// (https://wicg.github.io/local-network-access/); Chromium ≥ 142 asks the
// user once per site, and an enterprise policy can answer for the user:
//
//   - LoopbackNetworkAllowedForUrls (Chrome/Edge ≥ 146): requests from the
//     listed origins to loopback addresses are exempt from LNA checks.
//     This is what we write: it allows exactly the agent's address space.
//   - LocalNetworkAccessAllowedForUrls (Chrome ≥ 139, Edge ≥ 140) exempts
//     both loopback and the local network (192.168/16 …), more than the
//     agent needs; Show reports it when an administrator set it.
//
// (Microsoft Edge policy reference "LoopbackNetworkAllowedForUrls" and
// "LocalNetworkAccessAllowedForUrls", learn.microsoft.com/deployedge; the
// precedence is Blocked before Allowed, loopback lists before LNA lists.)
// Both were measured with Debian's Chromium 156 (cmd/cardwright
// TestLocalNetworkAccessBrowser).
//
// Firefox's equivalent is the enterprise policy LocalNetworkAccess with
// SkipDomains (policy templates v7.11, Firefox 151 / ESR 140.11): host
// names, not origins (no scheme, no port), whose pages skip LNA checks.
//
// Our Chromium and Chrome policy is a file of its own (FileName) in the
// managed-policy folder, so uninstall removes ours and nothing else.
// Firefox reads a single policies.json that may hold an administrator's
// other policies: we merge our host names into it (member order and every
// other value kept), record what we added in a file of our own beside it,
// and take out only that on uninstall.
package browserpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FileName is our policy file in a Chromium managed-policy folder, and our
// record beside Firefox's policies.json.
const FileName = "cardwright-local-network-access.json"

// Policy names (see the package comment).
const (
	PolicyLoopback = "LoopbackNetworkAllowedForUrls"
	PolicyLNA      = "LocalNetworkAccessAllowedForUrls"
	PolicyFirefox  = "LocalNetworkAccess" // with SkipDomains
)

// Kind is how a browser takes its policy.
type Kind int

const (
	// ChromiumDir: a folder of JSON files, each an object of policies
	// (Linux: /etc/chromium/policies/managed, /etc/opt/chrome/policies/managed).
	ChromiumDir Kind = iota
	// FirefoxJSON: one policies.json, {"policies": {...}}.
	FirefoxJSON
	// Registry: a Windows registry key whose subkey PolicyLoopback lists
	// origins as values "1".."n" (HKLM\SOFTWARE\Policies\Google\Chrome,
	// HKLM\SOFTWARE\Policies\Microsoft\Edge).
	Registry
)

// Target is one browser's policy location.
type Target struct {
	Browser  string   // "Chromium", "Google Chrome", "Microsoft Edge", "Firefox"
	Kind     Kind     // how the policy is stored
	Path     string   // the folder, the policies.json file, or the registry key
	Binaries []string // any of these present: the browser is installed
	// HostsOnly: the list takes host names, not origins (Firefox's
	// SkipDomains, also as Windows registry values).
	HostsOnly bool
}

// LinuxTargets are the Linux locations under root ("/" in production; a
// temporary folder in tests).
func LinuxTargets(root string) []Target {
	j := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	return []Target{
		{Browser: "Chromium", Kind: ChromiumDir, Path: j("etc", "chromium", "policies", "managed"),
			Binaries: []string{j("usr", "bin", "chromium"), j("usr", "bin", "chromium-browser"), j("snap", "bin", "chromium")}},
		{Browser: "Google Chrome", Kind: ChromiumDir, Path: j("etc", "opt", "chrome", "policies", "managed"),
			Binaries: []string{j("opt", "google", "chrome", "chrome"), j("usr", "bin", "google-chrome")}},
		{Browser: "Firefox", Kind: FirefoxJSON, Path: j("etc", "firefox", "policies", "policies.json"), HostsOnly: true,
			Binaries: []string{j("usr", "bin", "firefox"), j("usr", "bin", "firefox-esr"), j("snap", "bin", "firefox")}},
	}
}

// Installed says whether one of the browser's binaries is present.
func (t Target) Installed() bool {
	for _, b := range t.Binaries {
		if _, err := os.Stat(b); err == nil {
			return true
		}
	}
	return false
}

// Install makes t allow exactly origins (https://host[:port], checked by
// the caller) to reach loopback without a prompt. It changes nothing when
// that is already so (changed false).
func Install(t Target, origins []string) (changed bool, err error) {
	if len(origins) == 0 {
		return false, errors.New("no origins: name them (--origin) or configure [server] origin")
	}
	switch t.Kind {
	case ChromiumDir:
		return installChromium(t.Path, origins)
	case FirefoxJSON:
		return installFirefox(t.Path, origins)
	case Registry:
		if t.HostsOnly {
			origins = hosts(origins)
		}
		return registryInstall(t.Path, origins)
	}
	return false, fmt.Errorf("unknown policy kind %d", t.Kind)
}

// Uninstall takes out what Install put in t and nothing else.
func Uninstall(t Target) (changed bool, err error) {
	switch t.Kind {
	case ChromiumDir:
		f := filepath.Join(t.Path, FileName)
		if err := os.Remove(f); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("removing %s: %w", f, err)
		}
		return true, nil
	case FirefoxJSON:
		return uninstallFirefox(t.Path)
	case Registry:
		return registryUninstall(t.Path)
	}
	return false, fmt.Errorf("unknown policy kind %d", t.Kind)
}

// Status is what a browser will do with a page from the portal's origins.
type Status struct {
	Target
	Installed bool     // the browser is on this machine
	Ours      []string // origins (Firefox: host names) our policy allows
	// Others are other policies allowing loopback for some of the origins
	// asked about: "file: policy: value".
	Others []string
}

// Inspect reads t's policies.
func Inspect(t Target) (Status, error) {
	s := Status{Target: t, Installed: t.Installed()}
	var err error
	switch t.Kind {
	case ChromiumDir:
		s.Ours, s.Others, err = inspectChromium(t.Path)
	case FirefoxJSON:
		s.Ours, s.Others, err = inspectFirefox(t.Path)
	case Registry:
		s.Ours, s.Others, err = registryInspect(t.Path)
	}
	return s, err
}

// Verdict says in a sentence what the browser does for origin.
func (s Status) Verdict(origin string) string {
	want := origin
	if s.HostsOnly {
		want = Host(origin)
	}
	for _, o := range s.Ours {
		if o == want {
			if s.HostsOnly {
				return "connects without asking (LocalNetworkAccess.SkipDomains, Firefox ≥ 151 / ESR 140.11; any page of host " + want + ")"
			}
			return "connects without asking (" + PolicyLoopback + ", version ≥ 146)"
		}
	}
	for _, o := range s.Others {
		if strings.Contains(o, want) {
			return "connects without asking (an administrator's policy: " + o + ")"
		}
	}
	return "asks the user once for the site (local network access permission); headless or denied: blocked"
}

// chromiumPolicy is our file's content.
func chromiumPolicy(origins []string) []byte {
	b, _ := json.MarshalIndent(map[string][]string{PolicyLoopback: origins}, "", "  ")
	return append(b, '\n')
}

func installChromium(dir string, origins []string) (bool, error) {
	f := filepath.Join(dir, FileName)
	want := chromiumPolicy(origins)
	if have, err := os.ReadFile(f); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := writeAtomic(f, want, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// inspectChromium returns our origins and the other files' loopback or LNA
// allow-lists.
func inspectChromium(dir string) (ours, others []string, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			if e.Name() == FileName {
				return nil, nil, fmt.Errorf("reading %s: %w", e.Name(), err)
			}
			continue // another file Chromium will ignore too
		}
		for _, p := range []string{PolicyLoopback, PolicyLNA} {
			var list []string
			if json.Unmarshal(m[p], &list) != nil {
				continue
			}
			if e.Name() == FileName && p == PolicyLoopback {
				ours = list
				continue
			}
			for _, o := range list {
				others = append(others, fmt.Sprintf("%s: %s: %s", e.Name(), p, o))
			}
		}
	}
	return ours, others, nil
}

// Host is the host name of an origin (Firefox's SkipDomains entry).
func Host(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return origin
	}
	return u.Hostname()
}

func hosts(origins []string) []string {
	seen := map[string]bool{}
	var hs []string
	for _, o := range origins {
		if h := Host(o); h != "" && !seen[h] {
			seen[h] = true
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	return hs
}

// writeAtomic writes f through a temporary file in its folder, synced and
// renamed over it, so a reader sees the old or the new file, never half.
func writeAtomic(f string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(f), ".cardwright-*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", f, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	if err := os.Rename(tmp.Name(), f); err != nil {
		return fmt.Errorf("replacing %s: %w", f, err)
	}
	return nil
}
