// Package schema holds the JSON Schema (draft 2020-12) of every protocol
// message, one file per message type (docs/protocol.md links them), and a
// small validator for the subset of keywords those files use: type,
// const, enum, properties, required, additionalProperties, items, minimum,
// minLength, maxLength, pattern. Tests use it to check the examples in the
// docs and every frame the agent sends and receives. It is stdlib-only.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed *.json
var files embed.FS

// Types lists the message types that have a schema, sorted.
func Types() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// Raw returns the schema file of a message type.
func Raw(typ string) ([]byte, error) {
	if !validType.MatchString(typ) {
		return nil, fmt.Errorf("no schema for message type %q", typ)
	}
	b, err := files.ReadFile(path.Clean(typ + ".json"))
	if err != nil {
		return nil, fmt.Errorf("no schema for message type %q", typ)
	}
	return b, nil
}

var validType = regexp.MustCompile(`^[a-z_]+$`)

var (
	mu    sync.Mutex
	cache = map[string]map[string]any{}
	res   = map[string]*regexp.Regexp{}
)

func load(typ string) (map[string]any, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := cache[typ]; ok {
		return s, nil
	}
	b, err := Raw(typ)
	if err != nil {
		return nil, err
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("schema %s: %w", typ, err)
	}
	cache[typ] = s
	return s, nil
}

// Validate checks one protocol frame against the schema its "type" names.
// The error lists every violation with its JSON path.
func Validate(frame []byte) error {
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decoding frame: %w", err)
	}
	// One frame is one JSON value (RFC 8259 §2): nothing may follow it.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("decoding frame: data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("frame is not a JSON object")
	}
	typ, _ := obj["type"].(string)
	s, err := load(typ)
	if err != nil {
		return err
	}
	var errs []string
	check(s, v, "$", &errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s message: %s", typ, strings.Join(errs, "; "))
	}
	return nil
}

func check(s map[string]any, v any, at string, errs *[]string) {
	bad := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return isType(v, t) }) {
			bad("want %s, got %s", strings.Join(types, " or "), kind(v))
			return
		}
	}
	if c, ok := s["const"]; ok && !equal(c, v) {
		bad("want %v", c)
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return equal(x, v) }) {
		bad("%v is not one of %v", v, e)
	}
	switch v := v.(type) {
	case string:
		n := float64(utf8.RuneCountInString(v))
		if m, ok := s["minLength"].(float64); ok && n < m {
			bad("shorter than %v", m)
		}
		if m, ok := s["maxLength"].(float64); ok && n > m {
			bad("longer than %v", m)
		}
		if p, ok := s["pattern"].(string); ok && !pattern(p).MatchString(v) {
			bad("does not match %s", p)
		}
	case json.Number:
		f, _ := v.Float64()
		if m, ok := s["minimum"].(float64); ok && f < m {
			bad("less than %v", m)
		}
	case []any:
		if is, ok := s["items"].(map[string]any); ok {
			for i, x := range v {
				check(is, x, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				bad("missing %q", r)
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				check(ps, v[k], at+"."+k, errs)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("unknown property %q", k)
				}
			case map[string]any:
				check(ap, v[k], at+"."+k, errs)
			}
		}
	}
}

func pattern(p string) *regexp.Regexp {
	mu.Lock()
	defer mu.Unlock()
	re := res[p]
	if re == nil {
		re = regexp.MustCompile(p)
		res[p] = re
	}
	return re
}

func isType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	}
	return false
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func equal(a, b any) bool {
	if n, ok := b.(json.Number); ok {
		f, _ := n.Float64()
		return a == f
	}
	return a == b
}
