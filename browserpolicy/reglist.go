package browserpolicy

import (
	"sort"
	"strconv"
)

// A Chromium list policy in the Windows registry is a key whose values
// "1".."n" hold the entries (Chrome and Edge policy templates: e.g.
// Software\Policies\Google\Chrome\LoopbackNetworkAllowedForUrls\1). An
// administrator's entries may be there already: we add ours under free
// numbers, remember which (name → origin) and on uninstall delete only
// those that still hold what we wrote. The registry calls are in
// registry_windows.go; this part is plain data, tested everywhere.

// listAdd returns the values to write so that list (value name → origin)
// also holds every origin: new names are the lowest free numbers.
func listAdd(list map[string]string, origins []string) map[string]string {
	have := map[string]bool{}
	for _, v := range list {
		have[v] = true
	}
	add := map[string]string{}
	n := 1
	for _, o := range origins {
		if have[o] {
			continue
		}
		for {
			name := strconv.Itoa(n)
			n++
			if _, used := list[name]; !used {
				add[name] = o
				break
			}
		}
		have[o] = true
	}
	return add
}

// listRemove returns the value names to delete: those we added (name →
// origin) that still hold our origin.
func listRemove(list, added map[string]string) []string {
	var del []string
	for name, o := range added {
		if list[name] == o {
			del = append(del, name)
		}
	}
	sort.Strings(del)
	return del
}
