// Package pcscprobe is the self-test's PC/SC adapter (selftest.Readers):
// a fresh PC/SC context per run, so a daemon that is down is reported as
// down rather than hidden by a context established earlier.
package pcscprobe

import (
	"context"

	"github.com/cardwright/cardwright/pcsc"
	"github.com/cardwright/cardwright/selftest"
)

// Readers implements selftest.Readers over the PC/SC service.
type Readers struct{}

// Status lists every reader (skipped ones too: the self-test names them).
func (Readers) Status(context.Context) ([]selftest.Reader, error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Status(nil)
	if err != nil {
		return nil, err
	}
	out := make([]selftest.Reader, 0, len(st))
	for _, r := range st {
		out = append(out, selftest.Reader{Name: r.Name, Card: r.Present, Mute: r.Mute, ATR: r.ATR})
	}
	return out, nil
}
