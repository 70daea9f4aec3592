// Package jsonline checks log lines: each must be one JSON object whose keys
// are unique at every depth (docs/protocol.md, "Logs"). Tests of the agent
// and of `cardwright serve` use it on every line they capture.
package jsonline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Check reports why line is not one JSON object with unique keys at every
// depth. It walks the tokens with a json.Decoder, because Unmarshal (and jq)
// would keep the last of two equal keys without a word.
func Check(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok || d == '[' && depth == 0 {
			if depth == 0 {
				return errors.New("not a JSON object")
			}
			return nil
		}
		keys := map[string]bool{}
		for dec.More() {
			if d == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if keys[k.(string)] {
					return fmt.Errorf("duplicate key %q", k)
				}
				keys[k.(string)] = true
			}
			if err := walk(depth + 1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more after the object")
	}
	return nil
}
