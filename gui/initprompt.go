package gui

import (
	"context"
	"sync"
	"time"

	"fyne.io/fyne/v2"

	"github.com/cardwright/cardwright/prompt"
)

// Prompter is the runner's prompt.Prompter (and prompt.PadShower) in a
// process that runs both the Fyne app and the runner: the card
// initialization window of `cardwright init-gui`, where the officer at the
// screen is the one the job asks. (The desktop agent's prompts cross a pipe
// to the GUI process instead: gui/link.) Ask and ShowPad are called on the
// runner's goroutine, never on Fyne's: they open the windows through
// fyne.Do and wait.
type Prompter struct {
	app     fyne.App
	timeout time.Duration
	do      func(func()) // fyne.Do; tests run the calls on their own goroutine
}

// NewPrompter returns the Prompter of a; its windows close by themselves
// after timeout (0: two minutes, as the desktop's).
func NewPrompter(a fyne.App, timeout time.Duration) *Prompter {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	return &Prompter{app: a, timeout: timeout, do: fyne.Do}
}

type pinReplyMsg struct {
	a   prompt.Answer
	err error
}

// Ask implements prompt.Prompter: the PIN window (AskPIN) until it answers
// or ctx ends, which closes it.
func (p *Prompter) Ask(ctx context.Context, r prompt.Request) (prompt.Answer, error) {
	ch := make(chan pinReplyMsg, 1)
	var closeWin func() // set and read on Fyne's goroutine only
	p.do(func() {
		closeWin = AskPIN(p.app, r, p.timeout, func(a prompt.Answer, err error) { ch <- pinReplyMsg{a, err} })
	})
	select {
	case m := <-ch:
		return m.a, m.err
	case <-ctx.Done():
		// fyne.Do runs in order: the window is open by now.
		p.do(func() {
			if closeWin != nil {
				closeWin()
			}
		})
		select { // an answer given just before the close: nobody takes it
		case m := <-ch:
			m.a.Wipe()
		default:
		}
		return prompt.Answer{}, ctx.Err()
	}
}

// ShowPad implements prompt.PadShower: the PIN-pad window (ShowPad), whose
// Cancel calls cancel; done closes it.
func (p *Prompter) ShowPad(r prompt.Request, cancel func()) (done func()) {
	var closeWin func() // Fyne's goroutine only
	p.do(func() { closeWin = ShowPad(p.app, r, p.timeout, cancel) })
	var once sync.Once
	return func() {
		once.Do(func() {
			p.do(func() {
				if closeWin != nil {
					closeWin()
				}
			})
		})
	}
}

var (
	_ prompt.Prompter  = (*Prompter)(nil)
	_ prompt.PadShower = (*Prompter)(nil)
)
