package browserpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"unicode/utf8"
)

// Firefox: {"policies": {"LocalNetworkAccess": {"SkipDomains": [hosts]}}}
// merged into policies.json. The record (FileName beside it, which Firefox
// does not read) lists the hosts we added and the containers we created,
// so uninstall takes out exactly those.

// record is what Install changed in policies.json.
type record struct {
	Added   []string `json:"added"`             // host names added to SkipDomains
	Created []string `json:"created,omitempty"` // "file", "policies", "LocalNetworkAccess", "SkipDomains"
}

func recordPath(policies string) string { return filepath.Join(filepath.Dir(policies), FileName) }

func readRecord(policies string) (record, bool, error) {
	var r record
	b, err := os.ReadFile(recordPath(policies))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading %s: %w", recordPath(policies), err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("reading %s: %w", recordPath(policies), err)
	}
	return r, true, nil
}

// readPolicies returns policies.json's bytes, or nil when there is none.
func readPolicies(f string) ([]byte, error) {
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f, err)
	}
	return b, nil
}

func installFirefox(f string, origins []string) (bool, error) {
	have, err := readPolicies(f)
	if err != nil {
		return false, err
	}
	rec, hadRec, err := readRecord(f)
	if err != nil {
		return false, err
	}
	base, err := firefoxRemove(have, rec)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f, err)
	}
	out, nrec, err := firefoxAdd(base, hosts(origins))
	if err != nil {
		return false, fmt.Errorf("%s: %w", f, err)
	}
	if hadRec && bytes.Equal(out, have) && reflect.DeepEqual(nrec, rec) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", filepath.Dir(f), err)
	}
	// The record first: a crash between the two leaves a record of more
	// than was added, and uninstall removes only hosts it finds.
	rb, _ := json.MarshalIndent(nrec, "", "  ")
	if err := writeAtomic(recordPath(f), append(rb, '\n'), 0o644); err != nil {
		return false, err
	}
	if !bytes.Equal(out, have) {
		if err := writeAtomic(f, out, fileMode(f)); err != nil {
			return false, err
		}
	}
	return true, nil
}

func uninstallFirefox(f string) (bool, error) {
	rec, hadRec, err := readRecord(f)
	if err != nil || !hadRec {
		return false, err
	}
	have, err := readPolicies(f)
	if err != nil {
		return false, err
	}
	out, err := firefoxRemove(have, rec)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f, err)
	}
	switch {
	case out == nil && have != nil:
		if err := os.Remove(f); err != nil {
			return false, fmt.Errorf("removing %s: %w", f, err)
		}
	case !bytes.Equal(out, have):
		if err := writeAtomic(f, out, fileMode(f)); err != nil {
			return false, err
		}
	}
	if err := os.Remove(recordPath(f)); err != nil {
		return false, fmt.Errorf("removing %s: %w", recordPath(f), err)
	}
	return true, nil
}

func inspectFirefox(f string) (ours, others []string, err error) {
	rec, _, err := readRecord(f)
	if err != nil {
		return nil, nil, err
	}
	have, err := readPolicies(f)
	if err != nil || have == nil {
		return nil, nil, err
	}
	list, err := skipDomains(have)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f, err)
	}
	for _, h := range list {
		if slices.Contains(rec.Added, h) {
			ours = append(ours, h)
		} else {
			others = append(others, fmt.Sprintf("policies.json: %s.SkipDomains: %s", PolicyFirefox, h))
		}
	}
	return ours, others, nil
}

func fileMode(f string) os.FileMode {
	if fi, err := os.Stat(f); err == nil {
		return fi.Mode().Perm()
	}
	return 0o644
}

// skipDomains lists the string entries of policies.LocalNetworkAccess.SkipDomains.
func skipDomains(b []byte) ([]string, error) {
	top, err := parseObject(b)
	if err != nil {
		return nil, err
	}
	pol, _, err := top.child("policies")
	if err != nil || pol == nil {
		return nil, err
	}
	lna, _, err := pol.child(PolicyFirefox)
	if err != nil || lna == nil {
		return nil, err
	}
	var list []json.RawMessage
	if raw := lna.get("SkipDomains"); raw != nil {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("policies.%s.SkipDomains: %w", PolicyFirefox, err)
		}
	}
	var hs []string
	for _, v := range list {
		var s string
		if json.Unmarshal(v, &s) == nil {
			hs = append(hs, s)
		}
	}
	return hs, nil
}

// firefoxAdd adds hs to SkipDomains of the policies.json b (nil: none),
// keeping every other member and its order. It returns the new file and
// the record of what it added.
func firefoxAdd(b []byte, hs []string) ([]byte, record, error) {
	var rec record
	rec.Added = []string{}
	top := object{}
	if b == nil {
		rec.Created = append(rec.Created, "file")
	} else {
		var err error
		if top, err = parseObject(b); err != nil {
			return nil, rec, err
		}
	}
	pol, ok, err := top.child("policies")
	if err != nil {
		return nil, rec, err
	}
	if !ok {
		rec.Created = append(rec.Created, "policies")
	}
	lna, ok, err := pol.child(PolicyFirefox)
	if err != nil {
		return nil, rec, err
	}
	if !ok {
		rec.Created = append(rec.Created, PolicyFirefox)
	}
	var list []json.RawMessage
	if raw := lna.get("SkipDomains"); raw != nil {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, rec, fmt.Errorf("policies.%s.SkipDomains: %w", PolicyFirefox, err)
		}
	} else {
		rec.Created = append(rec.Created, "SkipDomains")
	}
	present := map[string]bool{}
	for _, v := range list {
		var s string
		if json.Unmarshal(v, &s) == nil {
			present[s] = true
		}
	}
	for _, h := range hs {
		if !utf8.ValidString(h) {
			return nil, rec, fmt.Errorf("host name %q is not UTF-8", h)
		}
		if !present[h] {
			v, _ := json.Marshal(h)
			list = append(list, v)
			rec.Added = append(rec.Added, h)
			present[h] = true
		}
	}
	if list == nil {
		list = []json.RawMessage{}
	}
	lv, _ := json.Marshal(list)
	lna = lna.set("SkipDomains", lv)
	pol = pol.set(PolicyFirefox, lna.marshal())
	top = top.set("policies", pol.marshal())
	return indent(top.marshal()), rec, nil
}

// firefoxRemove undoes rec on the policies.json b: the hosts it added
// leave SkipDomains, the containers it created go when empty, and a file
// it created goes when nothing else is in it (nil result).
func firefoxRemove(b []byte, rec record) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	top, err := parseObject(b)
	if err != nil {
		return nil, err
	}
	if len(rec.Added) == 0 && len(rec.Created) == 0 {
		return b, nil
	}
	created := func(s string) bool { return slices.Contains(rec.Created, s) }
	pol, ok, err := top.child("policies")
	if err != nil || !ok {
		return b, err
	}
	lna, ok, err := pol.child(PolicyFirefox)
	if err != nil || !ok {
		return b, err
	}
	if raw := lna.get("SkipDomains"); raw != nil {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("policies.%s.SkipDomains: %w", PolicyFirefox, err)
		}
		kept := []json.RawMessage{}
		for _, v := range list {
			var s string
			if json.Unmarshal(v, &s) == nil && slices.Contains(rec.Added, s) {
				continue
			}
			kept = append(kept, v)
		}
		if len(kept) == 0 && created("SkipDomains") {
			lna = lna.del("SkipDomains")
		} else {
			lv, _ := json.Marshal(kept)
			lna = lna.set("SkipDomains", lv)
		}
	}
	if len(lna) == 0 && created(PolicyFirefox) {
		pol = pol.del(PolicyFirefox)
	} else {
		pol = pol.set(PolicyFirefox, lna.marshal())
	}
	if len(pol) == 0 && created("policies") {
		top = top.del("policies")
	} else {
		top = top.set("policies", pol.marshal())
	}
	if created("file") && (len(top) == 0 || (len(top) == 1 && top[0].key == "policies" && len(pol) == 0)) {
		return nil, nil
	}
	return indent(top.marshal()), nil
}

// object is a JSON object with its members in file order (encoding/json's
// maps would sort an administrator's policies.json).
type object []member

type member struct {
	key string
	val json.RawMessage
}

// parseObject reads one JSON object and nothing after it.
func parseObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if t != json.Delim('{') {
		return nil, errors.New("parsing JSON: not an object")
	}
	o := object{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("parsing JSON: member name is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("parsing JSON member %q: %w", k, err)
		}
		o = append(o, member{k, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parsing JSON: data after the object")
	}
	return o, nil
}

// get returns the last member called k (as JSON.parse keeps the last).
func (o object) get(k string) json.RawMessage {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].key == k {
			return o[i].val
		}
	}
	return nil
}

// child parses member k as an object: ok false when there is none.
func (o object) child(k string) (c object, ok bool, err error) {
	raw := o.get(k)
	if raw == nil {
		return object{}, false, nil
	}
	if c, err = parseObject(raw); err != nil {
		return nil, true, fmt.Errorf("%s: %w", k, err)
	}
	return c, true, nil
}

// set replaces the last member called k, or appends one.
func (o object) set(k string, v json.RawMessage) object {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].key == k {
			o[i].val = v
			return o
		}
	}
	return append(o, member{k, v})
}

// del removes every member called k.
func (o object) del(k string) object {
	return slices.DeleteFunc(o, func(m member) bool { return m.key == k })
}

func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return b
	}
	out.WriteByte('\n')
	return out.Bytes()
}
