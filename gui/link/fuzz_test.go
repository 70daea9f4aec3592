package link

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
)

// nopHandler takes every message and does nothing.
type nopHandler struct{}

func (nopHandler) Info(Info)                                  {}
func (nopHandler) State(agent.State)                          {}
func (nopHandler) Ask(uint64, prompt.Request, time.Duration)  {}
func (nopHandler) Pad(uint64, prompt.Request, time.Duration)  {}
func (nopHandler) Pair(uint64, string, string, time.Duration) {}
func (nopHandler) Withdraw(uint64)                            {}
func (nopHandler) Raise()                                     {}

// FuzzClientRun: whatever the agent's end sends, the GUI's reader returns
// an error or io.EOF; it never panics or hangs.
func FuzzClientRun(f *testing.F) {
	f.Add([]byte(`{"t":"info","info":{"Version":"1"}}` + "\n" + `{"t":"state","state":{"Running":1}}` + "\n"))
	f.Add([]byte(`{"t":"ask","id":1,"req":{"Kind":"FROM_USER_DIALOG_2_FIELD","MinLen":4},"timeout":1000}` + "\n"))
	f.Add([]byte(`{"t":"pair","id":2,"origin":"https://a.example","code":"1234"}` + "\n" + `{"t":"withdraw","id":2}` + "\n"))
	f.Add([]byte(`{"t":"done","id":9,"err":"x"}` + "\n" + `{"t":"pad"}` + "\n"))
	f.Add([]byte(`{"t":"raise"}` + "\n" + `{"t":"raise","id":3}` + "\n"))
	f.Add([]byte("{\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := NewClient(bytes.NewReader(in), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(nopHandler{}); err == nil {
			t.Fatal("Run returned nil at the end of its input")
		}
	})
}

// fuzzAgent is an Agent with an empty state.
type fuzzAgent struct{}

func (fuzzAgent) State(context.Context) agent.State { return agent.State{} }
func (fuzzAgent) StateChanges() (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}
func (fuzzAgent) RemoveSite(string) error { return nil }

// FuzzSupervisorServe: whatever the GUI process writes, the agent's reader
// ends with an error; it never panics, and a pending request is then
// unavailable, not answered.
func FuzzSupervisorServe(f *testing.F) {
	f.Add([]byte(`{"t":"hello"}` + "\n" + `{"t":"answer","id":1,"pin":"MTIzNA=="}` + "\n"))
	f.Add([]byte(`{"t":"hello"}` + "\n" + `{"t":"pair_answer","id":1,"allow":true}` + "\n" + `{"t":"remove_site","id":1,"origin":"x"}` + "\n" + `{"t":"quit"}` + "\n"))
	f.Add([]byte(`{"t":"answer"}` + "\n"))
	f.Add([]byte(`{"t":"hello"}` + "\n" + `{"t":"pad_cancel","id":1}` + "\n" + "\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Supervisor{Agent: fuzzAgent{}, Log: slog.New(slog.DiscardHandler), Quit: func() {}}
		err := s.serve(context.Background(), newConn(bytes.NewReader(in), io.Discard))
		if err == nil {
			t.Fatal("serve returned nil at the end of its input")
		}
		if s.Up() {
			t.Fatal("still up after the GUI's output ended")
		}
	})
}
