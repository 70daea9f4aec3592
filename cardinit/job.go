package cardinit

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// Input is what the officer entered for one field.
type Input struct {
	Text   string       // every kind but Secret; Bool: "true" or "false"
	Secret secret.Value // Secret fields
	Raw    bool         // Param: Text is base64 already (the raw switch)
}

// FieldError is a value the form refuses, shown at its field.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Job makes the runner's job from the form's inputs for reader ("": the
// runner chooses). What the form can tell about a value alone (a number, a
// base64 text) is refused here, at its field; the rest is the runner's
// validation (Engine.Validate). An empty input leaves the field to its
// [Fields] default. The caller keeps inputs' secrets and wipes them; the
// job holds copies (runner.Job.Fields are wiped by whoever runs it).
func (d *Doc) Job(inputs map[string]Input, reader string) (*runner.Job, []FieldError) {
	job := &runner.Job{Name: d.Name, Fields: map[string]secret.Value{}, Reader: reader}
	if d.DSZ != nil {
		job.DSZ = d.DSZ
	} else {
		job.Description, job.Files = d.Source, d.Files
	}
	var errs []FieldError
	bad := func(f Field, format string, args ...any) {
		errs = append(errs, FieldError{Field: f.Name, Message: fmt.Sprintf(format, args...)})
	}
	for _, f := range d.Form {
		in := inputs[f.Name]
		if f.Kind == Secret {
			if !in.Secret.IsZero() {
				job.Fields[f.Name] = secret.FromBytes(in.Secret.Bytes())
			}
			continue
		}
		v := in.Text
		switch f.Kind {
		case Number:
			v = strings.TrimSpace(v)
			if v != "" {
				if _, err := strconv.Atoi(v); err != nil {
					bad(f, "%q is not a whole number", v)
					continue
				}
			}
		case Bool:
			if v != "" && v != "true" && v != "false" {
				bad(f, "%q is not true or false", v)
				continue
			}
		case Param:
			if v != "" && !in.Raw {
				v = base64.StdEncoding.EncodeToString([]byte(v))
			} else if v != "" {
				v = strings.TrimSpace(v)
				if _, err := base64.StdEncoding.DecodeString(v); err != nil {
					bad(f, "not valid base64: %v", err)
					continue
				}
			}
		case Data:
			v = strings.Join(strings.Fields(v), "")
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				bad(f, "not valid base64: %v", err)
				continue
			}
		}
		if v != "" {
			job.Fields[f.Name] = secret.New(v)
		}
	}
	return job, errs
}

// FieldOf names the form field a validation failure is about ("": none,
// the failure is shown for the whole form): the field whose use is at the
// failure's key and line, else one the message names.
func (d *Doc) FieldOf(e *api.JobError) string {
	if e == nil {
		return ""
	}
	for _, f := range d.Form {
		for _, u := range f.Uses {
			if e.Key != "" && strings.EqualFold(u.Key, e.Key) && (e.Line == 0 || e.Line == u.Pos.Line) {
				return f.Name
			}
		}
	}
	for _, f := range d.Form {
		if regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(e.Message) {
			return f.Name
		}
	}
	return ""
}
