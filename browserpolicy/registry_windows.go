//go:build windows

package browserpolicy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// policyView opens the browsers' policy keys in the 64-bit registry view,
// where 64-bit browsers read them, also from a 32-bit cardwright.exe (the
// x86 MSI) on 64-bit Windows; without it WOW64 may redirect the writes
// under Wow6432Node. recordKey stays in the process's own view: the MSI of
// the same architecture removes it.
const policyView = registry.WOW64_64KEY

// recordKey (HKLM) remembers, per list key, the values we added:
// a REG_MULTI_SZ named after the list key, entries "name=origin".
const recordKey = `SOFTWARE\cardwright\BrowserPolicy`

// Targets are the machine-wide policy keys (HKLM) of Chrome, Edge and
// Firefox (Firefox's group-policy form of LocalNetworkAccess.SkipDomains).
func Targets() []Target {
	// ProgramW6432 is the 64-bit Program Files folder even in a 32-bit
	// process (the x86 MSI's cardwright.exe), where ProgramFiles names
	// "Program Files (x86)".
	pf, pf86 := os.Getenv("ProgramW6432"), os.Getenv("ProgramFiles(x86)")
	if pf == "" {
		pf = os.Getenv("ProgramFiles")
	}
	bins := func(rel ...string) []string {
		var b []string
		for _, root := range []string{pf, pf86} {
			if root != "" {
				b = append(b, filepath.Join(append([]string{root}, rel...)...))
			}
		}
		return b
	}
	return []Target{
		{Browser: "Google Chrome", Kind: Registry, Path: `SOFTWARE\Policies\Google\Chrome\` + PolicyLoopback,
			Binaries: bins("Google", "Chrome", "Application", "chrome.exe")},
		{Browser: "Microsoft Edge", Kind: Registry, Path: `SOFTWARE\Policies\Microsoft\Edge\` + PolicyLoopback,
			Binaries: bins("Microsoft", "Edge", "Application", "msedge.exe")},
		{Browser: "Firefox", Kind: Registry, Path: `SOFTWARE\Policies\Mozilla\Firefox\` + PolicyFirefox + `\SkipDomains`, HostsOnly: true,
			Binaries: bins("Mozilla Firefox", "firefox.exe")},
	}
}

// readList reads the values of a list key (name → string); none when the
// key is missing.
func readList(path string) (map[string]string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE|policyView)
	if errors.Is(err, registry.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening HKLM\\%s: %w", path, err)
	}
	defer k.Close()
	names, err := k.ReadValueNames(0)
	if err != nil {
		return nil, fmt.Errorf("reading HKLM\\%s: %w", path, err)
	}
	list := map[string]string{}
	for _, n := range names {
		if v, _, err := k.GetStringValue(n); err == nil {
			list[n] = v
		}
	}
	return list, nil
}

func readAdded(path string) (map[string]string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, recordKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening HKLM\\%s: %w", recordKey, err)
	}
	defer k.Close()
	vals, _, err := k.GetStringsValue(path)
	if errors.Is(err, registry.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading HKLM\\%s: %w", recordKey, err)
	}
	added := map[string]string{}
	for _, v := range vals {
		if n, o, ok := strings.Cut(v, "="); ok {
			added[n] = o
		}
	}
	return added, nil
}

func writeAdded(path string, added map[string]string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, recordKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("creating HKLM\\%s: %w", recordKey, err)
	}
	defer k.Close()
	if len(added) == 0 {
		if err := k.DeleteValue(path); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("deleting HKLM\\%s\\%s: %w", recordKey, path, err)
		}
		return nil
	}
	var vals []string
	for n, o := range added {
		vals = append(vals, n+"="+o)
	}
	return k.SetStringsValue(path, vals)
}

func registryUninstall(path string) (bool, error) {
	added, err := readAdded(path)
	if err != nil || len(added) == 0 {
		return false, err
	}
	list, err := readList(path)
	if err != nil {
		return false, err
	}
	if del := listRemove(list, added); len(del) > 0 {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.SET_VALUE|policyView)
		if err != nil {
			return false, fmt.Errorf("opening HKLM\\%s: %w", path, err)
		}
		for _, n := range del {
			if err := k.DeleteValue(n); err != nil {
				k.Close()
				return false, fmt.Errorf("deleting HKLM\\%s\\%s: %w", path, n, err)
			}
		}
		k.Close()
		if len(del) == len(list) && !wow64() {
			// Empty now: ours alone. (RegDeleteKey cannot reach the 64-bit
			// view from a 32-bit process; there an empty key stays.)
			registry.DeleteKey(registry.LOCAL_MACHINE, path)
		}
	}
	return true, writeAdded(path, nil)
}

func registryInstall(path string, origins []string) (bool, error) {
	added, err := readAdded(path)
	if err != nil {
		return false, err
	}
	list, err := readList(path)
	if err != nil {
		return false, err
	}
	want, have := map[string]bool{}, map[string]bool{}
	for _, o := range list {
		have[o] = true
	}
	same := true
	for _, o := range origins {
		want[o] = true
		same = same && have[o]
	}
	for n, o := range added {
		same = same && want[o] && list[n] == o
	}
	if same {
		return false, nil
	}
	if _, err := registryUninstall(path); err != nil {
		return false, err
	}
	if list, err = readList(path); err != nil {
		return false, err
	}
	add := listAdd(list, origins)
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, path, registry.SET_VALUE|policyView)
	if err != nil {
		return false, fmt.Errorf("creating HKLM\\%s: %w", path, err)
	}
	defer k.Close()
	if err := writeAdded(path, add); err != nil {
		return false, err
	}
	for n, o := range add {
		if err := k.SetStringValue(n, o); err != nil {
			return false, fmt.Errorf("writing HKLM\\%s\\%s: %w", path, n, err)
		}
	}
	return true, nil
}

func registryInspect(path string) (ours, others []string, err error) {
	added, err := readAdded(path)
	if err != nil {
		return nil, nil, err
	}
	list, err := readList(path)
	if err != nil {
		return nil, nil, err
	}
	for n, o := range list {
		if added[n] == o {
			ours = append(ours, o)
		} else {
			others = append(others, fmt.Sprintf(`HKLM\%s\%s: %s`, path, n, o))
		}
	}
	return ours, others, nil
}

// wow64 reports whether this is a 32-bit process on 64-bit Windows.
func wow64() bool {
	var is bool
	if err := windows.IsWow64Process(windows.CurrentProcess(), &is); err != nil {
		return false
	}
	return is
}
