package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/issuer"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestLocalCAIssuerArchives: POST /CardJob's local CA (localCAIssuer) and
// the demo portal's POST /issue answer key-archival requests with a
// PKCS#12 that opens with the password given; neither logs the password.
func TestLocalCAIssuerArchives(t *testing.T) {
	ca, err := issuer.OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, ok := localCAIssuer(ca, log).(issuer.Archiver)
	if !ok {
		t.Fatal("POST /CardJob's local CA cannot archive keys")
	}
	got, err := a.Archive(context.Background(), issuer.Request{KeyArchival: true, Application: "B", Template: "EncHardCodedValues"})
	if err != nil {
		t.Fatal(err)
	}
	if _, cert, _, err := pkcs12.DecodeChain(got.PKCS12, got.Password.Reveal()); err != nil || cert.Subject.CommonName != "EncHardCodedValues" {
		t.Fatalf("the local CA's PKCS#12: %v", err)
	}
	passwords := []string{got.Password.Reveal()}

	srv := httptest.NewServer(demoHandler("ws://127.0.0.1:1/v1/ws", false, nil, ca, log))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/issue", "application/json", strings.NewReader(`{"template":"EncHardCodedValues","application":"B","key_archival":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ PKCS12, Password, Certificate string }
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK || ans.Certificate != "" {
		t.Fatalf("HTTP %d %v %+v", resp.StatusCode, err, ans)
	}
	der, _ := base64.StdEncoding.DecodeString(ans.PKCS12)
	if _, _, _, err := pkcs12.DecodeChain(der, ans.Password); err != nil {
		t.Fatalf("the demo portal's PKCS#12: %v", err)
	}
	passwords = append(passwords, ans.Password)
	if !strings.Contains(logs.String(), "key archival") {
		t.Errorf("nothing logged: %s", logs.String())
	}
	for _, p := range passwords {
		if p == "" || strings.Contains(logs.String(), p) {
			t.Errorf("a PKCS#12 password is empty or logged")
		}
	}
}
