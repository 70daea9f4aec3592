package agent

// wireerrors.go: what a malformed frame is told — the field and the JSON
// type it takes, never Go's own words.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// describeJSONError words a decoding error for the portal's developer: the
// field as it is spelled on the wire and the JSON type it takes
// (docs/protocol.md, "Errors"), never Go's struct and type names.
func describeJSONError(err error, v any) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		got := te.Value
		switch got {
		case "number", "string", "array", "object", "bool":
		default: // "number 1e999", "number -1" and the like
			if strings.HasPrefix(got, "number") {
				got = "number"
			}
		}
		if got == "bool" {
			got = "boolean"
		}
		if te.Field == "" {
			return "a message is a JSON object, not " + article(got)
		}
		if ft := wireField(v, te.Field); ft != nil && ft.Kind() == reflect.Map && te.Type != ft {
			// encoding/json names the map, not the key of the bad value.
			return fmt.Sprintf("field %q must be %s; one of its values is %s", te.Field, jsonKind(ft), article(got))
		}
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type), article(got))
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON: the message ends early"
	}
	return "not valid JSON"
}

// wireField is the type of the top-level field of the struct *v that is
// called name on the wire, or nil.
func wireField(v any, name string) reflect.Type {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f.Type
		}
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		if k := t.Elem().Kind(); k >= reflect.Int && k <= reflect.Uint64 {
			return "an array of integers"
		}
		return "an array"
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Struct:
		return "an object"
	}
	return "another type"
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "null":
		return kind
	}
	return "a " + kind
}
