package runner_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// countingReaders counts every use of the readers: a validation or a dry
// run must not make any.
type countingReaders struct {
	runner.Readers
	n atomic.Int64
}

func (c *countingReaders) List(ctx context.Context) ([]runner.ReaderInfo, error) {
	c.n.Add(1)
	return c.Readers.List(ctx)
}

func (c *countingReaders) Connect(ctx context.Context, reader string) (runner.Conn, error) {
	c.n.Add(1)
	return c.Readers.Connect(ctx, reader)
}

// TestValidate: Validate is Run's validation without card or token I/O —
// an invalid field value fails as invalid_field at its key and position,
// a valid job is nil.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  func(j *runner.Job)
		code api.Code
		key  string
	}{
		{"valid", nil, "", ""},
		{"field not base64", func(j *runner.Job) { j.Fields["HOLDER"] = secret.New("not base64!") }, api.CodeInvalidField, "ProfileParameters"},
		{"empty PIN field", func(j *runner.Job) { j.Fields["PIN_FIELD"] = secret.New("") }, api.CodeInvalidField, "PIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "R0")
			cr := &countingReaders{Readers: r.readers}
			r.engine.Readers = cr
			run := demoRunner(t, r)
			j := demoJob(t, nil)
			if tc.job != nil {
				tc.job(j)
			}
			err := run.Validate(j)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
			} else {
				var f *runner.Failure
				if !errors.As(err, &f) {
					t.Fatalf("Validate = %v (%T), want a *runner.Failure", err, err)
				}
				if f.Code != tc.code || f.Key != tc.key || f.Step != "validate" || f.File != "demo.dsc" || f.Line == 0 {
					t.Errorf("Validate = %+v, want %s at %s in demo.dsc with a line", f, tc.code, tc.key)
				}
				// Run ends the same job with the same failure.
				if res := run.Run(context.Background(), j, nil); res.Err == nil || *res.Err != *f.JobError() {
					t.Errorf("Run: %+v, Validate: %+v", res.Err, f.JobError())
				}
			}
			if n := cr.n.Load(); n != 0 {
				t.Errorf("%d reader calls", n)
			}
			if n := len(r.readers.Card("R0").Transcript()); n != 0 {
				t.Errorf("%d APDUs", n)
			}
			if c := r.tokens.Calls(); len(c) != 0 {
				t.Errorf("token calls: %v", c)
			}
			if n := len(r.issuer.reqs); n != 0 {
				t.Errorf("%d issuer requests", n)
			}
		})
	}
}
