package dsc

import (
	"encoding/json"
	"fmt"
	"testing"
)

// fmtPlan prints a plan every way a careless caller might.
func fmtPlan(t *testing.T, p *Plan) string {
	t.Helper()
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(j) + fmt.Sprintf("%v %+v", p, p.Credentials)
}
