package schema

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzValidate: Validate never panics, and a frame it accepts is a JSON
// object whose type has a schema.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","id":"1","versions":[1]}`,
		`{"type":"sign","id":"1","data":"AAAA","filter":{"op":"eq"}}`,
		`{"type":"result","id":"1","ok":false,"error":{"code":"busy","message":"m"}}`,
		`{"type":"nope"}`, `[]`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if Validate(frame) != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(frame, &m); err != nil {
			t.Fatalf("accepted a frame that is not a JSON object: %q", frame)
		}
		typ, _ := m["type"].(string)
		if !slices.Contains(Types(), typ) {
			t.Fatalf("accepted type %q, which has no schema", typ)
		}
	})
}
