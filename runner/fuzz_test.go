package runner_test

import (
	"encoding/base64"
	"os"
	"testing"

	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/runner/runnertest"
)

// FuzzPlan feeds untrusted job input — a .dsc text, or a .dsz (zip or its
// base64) — through validation (openJob, dsc check and plan, Build): it may
// refuse anything, but never panic, and every refusal is a *Failure with a
// code. A hang is left to go test's -timeout (make fuzz sets one): a
// wall-clock limit per input fails on a slow or busy machine.
func FuzzPlan(f *testing.F) {
	src, err := os.ReadFile(demoDir + "/demo.dsc")
	if err != nil {
		f.Fatal(err)
	}
	cpfSrc, _ := os.ReadFile(demoDir + "/demo.cpf")
	z := zipOf(f, map[string][]byte{"demo.dsc": src, "demo.cpf": cpfSrc})
	f.Add(false, src)
	f.Add(true, z)
	f.Add(true, []byte(base64.StdEncoding.EncodeToString(z)))
	f.Add(false, []byte("[Description]\nInitToken=true\nChipProfile=demo.cpf\n"))
	f.Add(true, []byte("PK\x03\x04garbage"))
	r := &runner.Runner{Engine: &runner.Engine{Readers: runnertest.NewMemReaders(nil)}, Deps: runner.Deps{Tokens: &runnertest.FakeTokens{}, Issuer: newIssuer(f), Profiles: runner.CPF{}}}
	fields := demoJob(f, nil).Fields
	f.Fuzz(func(t *testing.T, dsz bool, data []byte) {
		j := &runner.Job{Fields: fields, Files: runner.Files{"demo.cpf": cpfSrc}}
		if dsz {
			j.DSZ = data
		} else {
			j.Description = data
		}
		plan, err := r.Plan(j)
		if err != nil {
			if _, ok := err.(*runner.Failure); !ok {
				t.Fatalf("Plan error %T is not a *Failure: %v", err, err)
			}
			return
		}
		if _, _, err := runner.Build(plan, r.Deps); err != nil {
			if _, ok := err.(*runner.Failure); !ok {
				t.Fatalf("Build error %T is not a *Failure: %v", err, err)
			}
		}
	})
}
