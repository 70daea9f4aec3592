package main

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/cardwright/cardwright/issuer"
)

// demoArchive answers the demo page's key-archival requests (POST /issue
// with key_archival true, no csr) as a portal whose CA makes and archives
// the key would: the demo CA makes the key and returns it with its
// certificate as a PKCS#12 and the password — the answer the page passes
// on to the agent (docs/protocol.md, "request → answer → ok"). The
// password is not logged.
func demoArchive(w http.ResponseWriter, r *http.Request, ca *issuer.LocalCA, application, template string, log *slog.Logger) {
	a, err := ca.Archive(r.Context(), issuer.Request{KeyArchival: true, Application: application, Template: template})
	if err != nil {
		log.Warn("demo CA refused a key-archival request", "err", err)
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	defer a.Password.Wipe()
	out := struct {
		PKCS12   string `json:"pkcs12"`
		Password string `json:"password"`
	}{PKCS12: base64.StdEncoding.EncodeToString(a.PKCS12), Password: a.Password.Reveal()}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(&out)
	log.Info("demo CA answered a request for key archival", "application", application, "template", template)
}
