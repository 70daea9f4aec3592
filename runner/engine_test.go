package runner_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/prompt"
	"github.com/cardwright/cardwright/runner"
	"github.com/cardwright/cardwright/secret"
)

// fakeCard is an in-process card for engine tests: a serial, an ATR and a
// fault hook.
type fakeCard struct {
	mu      sync.Mutex
	atr     []byte
	serial  []byte
	removed bool
	inTx    int
}

type fakeReaders struct {
	cards map[string]*fakeCard
}

func (f *fakeReaders) List(context.Context) ([]runner.ReaderInfo, error) {
	var l []runner.ReaderInfo
	for n, c := range f.cards {
		l = append(l, runner.ReaderInfo{Name: n, Present: c != nil && !c.removed})
	}
	return l, nil
}

func (f *fakeReaders) Connect(_ context.Context, r string) (runner.Conn, error) {
	c := f.cards[r]
	if c == nil || c.removed {
		return nil, fmt.Errorf("connecting to %q: %w", r, iso7816.ErrCardRemoved)
	}
	return &fakeConn{c: c}, nil
}

type fakeConn struct{ c *fakeCard }

func (f *fakeConn) Transmit(cmd []byte) ([]byte, error) {
	if f.c.removed {
		return nil, iso7816.ErrCardRemoved
	}
	return []byte{0x90, 0x00}, nil
}
func (f *fakeConn) ATR() []byte { return f.c.atr }
func (f *fakeConn) Begin() error {
	f.c.mu.Lock()
	f.c.inTx++
	f.c.mu.Unlock()
	return nil
}
func (f *fakeConn) End() error {
	f.c.mu.Lock()
	f.c.inTx--
	f.c.mu.Unlock()
	return nil
}
func (f *fakeConn) Serial() ([]byte, error) {
	if f.c.removed {
		return nil, iso7816.ErrCardRemoved
	}
	return f.c.serial, nil
}
func (f *fakeConn) Close() error { return nil }

// askFunc is a Prompter that sees the whole request.
type askFunc func(prompt.Request) (prompt.Answer, error)

func (f askFunc) Ask(_ context.Context, r prompt.Request) (prompt.Answer, error) { return f(r) }

type promptFunc func() (secret.Value, error)

func (p promptFunc) Ask(context.Context, prompt.Request) (prompt.Answer, error) {
	v, err := p()
	return prompt.Answer{PIN: v}, err
}

func twoReaders() *fakeReaders {
	return &fakeReaders{cards: map[string]*fakeCard{
		"R0": {atr: []byte{0x3B, 0x00}, serial: []byte{1, 2, 3}},
		"R1": {atr: []byte{0x3B, 0x01}, serial: []byte{4, 5, 6}},
	}}
}

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rd     *fakeReaders
		sel    runner.Selection
		reader string
		code   api.Code
	}{
		{"explicit", twoReaders(), runner.Selection{Reader: "R1"}, "R1", ""},
		{"unknown reader", twoReaders(), runner.Selection{Reader: "R9"}, "", api.CodeReaderUnavailable},
		{"ambiguous", twoReaders(), runner.Selection{}, "", api.CodeCardAmbiguous},
		{"skip", twoReaders(), runner.Selection{Skip: func(r string) bool { return r == "R0" }}, "R1", ""},
		{"explicit but skipped", twoReaders(), runner.Selection{Reader: "R0", Skip: func(r string) bool { return r == "R0" }}, "", api.CodeReaderUnavailable},
		{"iccsn", twoReaders(), runner.Selection{ICCSN: "010203"}, "R0", ""},
		{"iccsn with atr", twoReaders(), runner.Selection{ICCSN: "040506-3B01", WithATR: true}, "R1", ""},
		{"iccsn without atr suffix", twoReaders(), runner.Selection{ICCSN: "040506", WithATR: true}, "", api.CodeCardNotFound},
		{"none", &fakeReaders{cards: map[string]*fakeCard{"R0": nil}}, runner.Selection{}, "", api.CodeNoCard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &runner.Engine{Readers: tc.rd}
			res := e.Exec(context.Background(), tc.sel, nil, nil)
			if tc.code != "" {
				if res.Err == nil || res.Err.Code != tc.code {
					t.Fatalf("Err = %v, want %s", res.Err, tc.code)
				}
				return
			}
			if res.Err != nil || res.Reader != tc.reader {
				t.Fatalf("reader %q err %v, want %q", res.Reader, res.Err, tc.reader)
			}
		})
	}
}

func TestStepFailures(t *testing.T) {
	rd := twoReaders()
	for _, tc := range []struct {
		name     string
		prompter prompt.Prompter
		run      func(ctx context.Context, s *runner.Session) error
		code     api.Code
	}{
		{"removed", nil, func(ctx context.Context, s *runner.Session) error {
			rd.cards["R0"].removed = true
			defer func() { rd.cards["R0"].removed = false }()
			_, err := s.Conn.Transmit([]byte{0, 0xA4, 0, 0})
			return err
		}, api.CodeCardRemoved},
		{"headless prompt", nil, func(ctx context.Context, s *runner.Session) error {
			_, err := s.Ask(ctx, prompt.Request{Kind: prompt.OneField, Label: "PIN"})
			return err
		}, api.CodePromptUnavailable},
		{"refused prompt", promptFunc(func() (secret.Value, error) { return secret.Value{}, prompt.ErrRefused }), func(ctx context.Context, s *runner.Session) error {
			_, err := s.Ask(ctx, prompt.Request{Kind: prompt.OneField, Label: "PIN"})
			return err
		}, api.CodePromptRefused},
		{"card swapped during prompt", promptFunc(func() (secret.Value, error) {
			rd.cards["R0"].serial = []byte{9}
			return secret.New("1234"), nil
		}), func(ctx context.Context, s *runner.Session) error {
			defer func() { rd.cards["R0"].serial = []byte{1, 2, 3} }()
			if _, err := s.Ask(ctx, prompt.Request{Kind: prompt.OneField, Label: "PIN"}); err != nil {
				return err
			}
			return s.BeforeWrite()
		}, api.CodeCardChanged},
		{"generic", nil, func(ctx context.Context, s *runner.Session) error { return errors.New("6A82") }, api.CodeCardError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &runner.Engine{Readers: rd, Prompter: tc.prompter}
			steps := []runner.Step{{Name: "first", Run: func(context.Context, *runner.Session) error { return nil }},
				{Name: "SetPIN", Key: "SetPIN", File: "x.dsc", Line: 7, Run: tc.run}}
			var got []runner.Progress
			res := e.Exec(context.Background(), runner.Selection{Reader: "R0"}, steps, func(p runner.Progress) { got = append(got, p) })
			if res.Err == nil || res.Err.Code != tc.code {
				t.Fatalf("Err = %v, want %s", res.Err, tc.code)
			}
			if res.Err.Step != "SetPIN" || res.Err.Line != 7 || res.Err.Key != "SetPIN" {
				t.Errorf("position = %+v", res.Err)
			}
			if len(got) != 2 || got[1].N != 2 || got[1].Total != 2 {
				t.Errorf("progress = %+v", got)
			}
			if rd.cards["R0"].inTx != 0 {
				t.Error("transaction left open")
			}
		})
	}
}

func TestCancelAndBusy(t *testing.T) {
	rd := twoReaders()
	e := &runner.Engine{Readers: rd}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan runner.Result)
	go func() {
		done <- e.Exec(ctx, runner.Selection{Reader: "R0"}, []runner.Step{
			{Name: "wait", Run: func(ctx context.Context, s *runner.Session) error { close(started); <-release; return nil }},
			{Name: "never", Run: func(context.Context, *runner.Session) error { t.Error("ran after cancel"); return nil }},
		}, nil)
	}()
	<-started
	if res := e.Exec(context.Background(), runner.Selection{Reader: "R0"}, nil, nil); res.Err == nil || res.Err.Code != api.CodeBusy {
		t.Errorf("second job on busy reader: %v", res.Err)
	}
	if res := e.Exec(context.Background(), runner.Selection{Reader: "R1"}, nil, nil); res.Err != nil {
		t.Errorf("job on other reader: %v", res.Err)
	}
	cancel()
	close(release)
	if res := <-done; res.Err == nil || res.Err.Code != api.CodeCancelled || res.Err.Step != "never" {
		t.Errorf("cancelled job: %+v", res.Err)
	}
	if res := e.Exec(context.Background(), runner.Selection{Reader: "R0"}, nil, nil); res.Err != nil {
		t.Errorf("reader not released: %v", res.Err)
	}
}
