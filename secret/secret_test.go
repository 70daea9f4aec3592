package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const pin = "482913"
	v := New(pin)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "pin", v, "any", any(v))
	j, _ := json.Marshal(struct{ P Value }{v})
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", v, v, v, v, v, v, v, v),
		buf.String(), string(j), fmt.Sprintf("%v", []Value{v}),
	}
	for _, o := range outs {
		if strings.Contains(o, pin) {
			t.Errorf("secret leaked in %q", o)
		}
		if !strings.Contains(o, "secret") { // JSON escapes the angle brackets
			t.Errorf("no mask in %q", o)
		}
	}
	if v.Reveal() != pin {
		t.Fatalf("Reveal = %q", v.Reveal())
	}
	b := v.Bytes()
	v.Wipe()
	if !v.IsZero() || b[0] != 0 {
		t.Fatalf("Wipe left %q", b)
	}
}
