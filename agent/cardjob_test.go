package agent_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent"
)

func dsz(t testing.TB, dsc string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("job.dsc")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, dsc)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func postCardJob(t testing.TB, ta *testAgent, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+ta.addr+"/CardJob", "application/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCardJobXML(t *testing.T) {
	ta := startAgent(t, func(c *agentConfig, _ *agentDeps) { c.AllowedModules = []string{"/usr/lib/softhsm/libsofthsm2.so"} })
	d := dsz(t, "[Description]\nPKCS11Library=#/usr/lib/softhsm/libsofthsm2.so\n")
	body := `<?xml version="1.0"?>
<card_job id="42">
  <reader>Fake Reader 1</reader>
  <applications><application name="demo">` + d + `</application></applications>
  <text_fields>
    <text_field name="Echo">Ada Lovelace</text_field>
    <text_field name="PIN">5511</text_field>
    <text_field name="ICCSN" read="true"/>
    <text_field name="PIN1" read="true" secret="true"/>
  </text_fields>
</card_job>`
	code, out := postCardJob(t, ta, body)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	var resp agent.CardJobResponse
	if err := xml.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	got := map[string]agent.CardJobField{}
	for _, f := range resp.Fields {
		got[f.Name] = f
	}
	if resp.ID != "42" || !got["ICCSN"].Read || !strings.HasPrefix(got["ICCSN"].Value, "FAKE") || got["Echo"].Value != "Ada Lovelace" ||
		got["Reader"].Value != "Fake Reader 1" || got["PIN1"].Value != "5511" || !got["PIN1"].Secret {
		t.Fatalf("response:\n%s", out)
	}
	if !strings.Contains(out, `read="true"`) {
		t.Fatalf("no read=\"true\" in\n%s", out)
	}
	// Acknowledged right after the response was flushed.
	waitFor(t, func() bool { recs, _ := ta.journal.All(); return len(recs) == 0 })

	tests := []struct {
		name, body, want string
	}{
		{"module not allowed", `<card_job id="7"><applications><application>` + dsz(t, "[Description]\nPKCS11Library=#/tmp/evil.so\n") +
			`</application></applications></card_job>`, "module_not_allowed"},
		{"runner error", `<card_job id="8"><applications><application>` + d + `</application></applications>` +
			`<text_fields><text_field name="Fail">no_card</text_field></text_fields></card_job>`, "no_card"},
		{"no application", `<card_job id="9"></card_job>`, "bad_request"},
		{"not xml", `{`, "bad_request"},
		{"cancel unknown", `<cancel_job id="nope"/>`, "unknown_job"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, out := postCardJob(t, ta, tc.body)
			var st agent.StatusResponse
			if err := xml.Unmarshal([]byte(out), &st); err != nil || string(st.Code) != tc.want || st.Status != "error" {
				t.Fatalf("got %s (%v)", out, err)
			}
		})
	}
	if strings.Contains(ta.log.String(), "5511") {
		t.Fatal("the PIN reached the log")
	}
}
