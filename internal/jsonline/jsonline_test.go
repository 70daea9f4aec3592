package jsonline

import "testing"

func TestCheck(t *testing.T) {
	for line, ok := range map[string]bool{
		`{"msg":"a","x":{"y":1,"z":[{"a":1},{"a":2}]}}`:   true,
		`{"msg":"job refused","code":"x","msg":"detail"}`: false,
		`{"a":{"b":1,"b":2}}`:                             false,
		`{"a":[{"b":1,"b":2}]}`:                           false,
		`listening on ws://127.0.0.1:1/v1/ws`:             false,
		`{"a":1} {"b":2}`:                                 false,
		`[1]`:                                             false,
		`"text"`:                                          false,
	} {
		if err := Check(line); (err == nil) != ok {
			t.Errorf("%s: %v", line, err)
		}
	}
}
