package softtoken_test

import (
	"context"
	"encoding/base64"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/softstore"
	"github.com/cardwright/cardwright/softstore/softstoretest"
	"github.com/cardwright/cardwright/softtoken"
)

// TestOverLimitsRefusedBeforeDialog: a PKCS#12 asking for more
// key-derivation rounds than softstore.MaxIterations is invalid_field
// before the passphrase dialog opens, and nothing is stored.
func TestOverLimitsRefusedBeforeDialog(t *testing.T) {
	f := softstoretest.NewP12("Slow", "pw")
	slow, err := pkcs12.Modern2023.WithIterations(softstore.MaxIterations+1).Encode(f.Key, f.Cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	store := softstore.New(t.TempDir())
	s := &script{answers: []string{"pw"}}
	svc := &softtoken.Service{Prompter: s, Targets: []softtoken.Target{softtoken.AgentStore{Store: store}}}
	_, err = svc.DeliverSoftToken(context.Background(), "https://portal.example",
		&api.SoftToken{PKCS12: base64.StdEncoding.EncodeToString(slow), Store: api.StoreAgent}, nil)
	if je := jobErr(t, err); je.Code != api.CodeInvalidField || je.Key != "pkcs12" || len(s.reqs) != 0 {
		t.Fatalf("%v after %d dialogs", err, len(s.reqs))
	}
	if ents, _ := store.List(); len(ents) != 0 {
		t.Fatalf("stored %v", ents)
	}
}
