package link

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/prompt"
)

// linkPIN and linkCurrent are the test's secrets, easy to grep for.
const (
	linkPIN     = "pin-link-58213"
	linkCurrent = "cur-link-90417"
)

// chunks is a reader that hands out its chunks one Read at a time, as a
// pipe does when the writer writes them one by one.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

// line is m as one link line.
func line(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// secretsIn names the forms of the test's secrets found in b: the bytes
// and their base64 (as they travel in a line).
func secretsIn(b []byte) []string {
	var found []string
	for _, s := range []string{linkPIN, linkCurrent} {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
			if bytes.Contains(b, []byte(form)) {
				found = append(found, form)
			}
		}
	}
	return found
}

// TestLinkReadWipesLine: the buffer a conn reads lines into holds no PIN
// once the answer that carried it was read — whatever way the pipe cut the
// line into reads, also when the answer arrives after enough other lines
// that the reader has to move a partial line to the front of its buffer
// (the place it moved it from must not keep a copy), and when a line
// longer than the buffer made it grow.
func TestLinkReadWipesLine(t *testing.T) {
	answer := line(t, &Message{T: TAnswer, ID: 7, PIN: []byte(linkPIN), Current: []byte(linkCurrent)})
	st := agent.State{Version: "test", Sites: []agent.Site{{Origin: "https://" + strings.Repeat("x", 900) + ".example"}}}
	state := line(t, &Message{T: TState, State: &st})
	big := agent.State{Version: strings.Repeat("v", 100<<10)}
	bigState := line(t, &Message{T: TState, State: &big})

	for _, tc := range []struct {
		name   string
		before int // state lines before the answer
		big    bool
	}{
		{"answer first", 0, false},
		{"after a few lines", 3, false},
		{"past half of the buffer", 40, false}, // ~37 KB of lines: the reader moves the rest to the front
		{"past the whole buffer", 75, false},
		{"after a line longer than the buffer", 1, true},
	} {
		var lead []byte
		for i := 0; i < tc.before; i++ {
			lead = append(lead, state...)
		}
		if tc.big {
			lead = append(lead, bigState...)
		}
		// Every cut of the answer line into two reads, the first carrying
		// all the lines before it.
		for cut := 0; cut <= len(answer); cut++ {
			first := append(append([]byte(nil), lead...), answer[:cut]...)
			second := append([]byte(nil), answer[cut:]...)
			tail := line(t, &Message{T: TQuit})
			c := newConn(&chunks{parts: [][]byte{first, second, tail}}, io.Discard)
			var got *Message
			for {
				m, err := c.read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s, cut %d: %v", tc.name, cut, err)
				}
				if m.T == TAnswer {
					got = m
					if f := secretsIn(c.buf); f != nil {
						t.Fatalf("%s, cut %d: after the answer was read the conn's buffer still holds %q", tc.name, cut, f)
					}
				}
			}
			if got == nil || string(got.PIN) != linkPIN || string(got.Current) != linkCurrent || got.ID != 7 {
				t.Fatalf("%s, cut %d: answer %+v", tc.name, cut, got)
			}
			if f := secretsIn(c.buf); f != nil {
				t.Fatalf("%s, cut %d: at the end the conn's buffer holds %q", tc.name, cut, f)
			}
			if n := len(bytes.Trim(c.buf, "\x00")); n != 0 {
				t.Fatalf("%s, cut %d: at the end %d bytes of what was read are left in the conn's buffer", tc.name, cut, n)
			}
			got.wipe()
		}
	}
}

// TestLinkReadLimits: a line longer than maxLine ends the link with an
// error, as does a message without a type or one that is not JSON; the
// line that failed is wiped all the same.
func TestLinkReadLimits(t *testing.T) {
	long := append(bytes.Repeat([]byte("a"), maxLine+10), '\n')
	if _, err := newConn(bytes.NewReader(long), io.Discard).read(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a line of %d bytes: %v, want an error", len(long), err)
	}
	for _, l := range []string{`{"id":1,"pin":"` + base64.StdEncoding.EncodeToString([]byte(linkPIN)) + `"}`, `not json ` + linkPIN, `{"t":"answer","pin":"` + linkPIN + `"}`} {
		c := newConn(strings.NewReader(l+"\n"), io.Discard)
		if _, err := c.read(); err == nil {
			t.Errorf("%q: no error", l)
		} else if strings.Contains(err.Error(), linkPIN) {
			t.Errorf("%q: the error names the PIN: %v", l, err)
		}
		if f := secretsIn(c.buf); f != nil {
			t.Errorf("%q: the conn's buffer holds %q after the error", l, f)
		}
	}
	// A last line without its newline is not a message.
	c := newConn(strings.NewReader(`{"t":"answer","id":3,"pin":"`+base64.StdEncoding.EncodeToString([]byte(linkPIN))+`"}`), io.Discard)
	if m, err := c.read(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut line: %+v, %v; want io.ErrUnexpectedEOF", m, err)
	}
	if f := secretsIn(c.buf); f != nil {
		t.Errorf("a cut line: the conn's buffer holds %q", f)
	}
}

// TestLinkWrite: what write sends is one line that decodes to the message
// it was given, secrets and all, and equals encoding/json's own encoding
// (the link's secrets are encoded by hand, outside encoding/json's pooled
// buffers).
func TestLinkWrite(t *testing.T) {
	for _, m := range []*Message{
		{T: TAnswer, ID: 1, PIN: []byte(linkPIN)},
		{T: TAnswer, ID: 2, PIN: []byte(linkPIN), Current: []byte(linkCurrent)},
		{T: TAnswer, ID: 3, Current: []byte(linkCurrent)},
		{T: TAnswer, ID: 4, Refused: true},
		{T: TAsk, ID: 5, Req: &prompt.Request{Kind: prompt.ThreeFields, Origin: "https://portal.example", Label: "a \"quoted\" <label>"}, Timeout: 7},
		{T: THello},
		{T: TAnswer, ID: 6, PIN: []byte{0, 1, 2, 0xff, '"', '\\', '\n'}},
	} {
		var out bytes.Buffer
		c := newConn(strings.NewReader(""), &out)
		if err := c.write(m); err != nil {
			t.Fatal(err)
		}
		want := line(t, m)
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("write(%+v) = %s, want %s", m, out.Bytes(), want)
		}
		got, err := newConn(bytes.NewReader(out.Bytes()), io.Discard).read()
		if err != nil {
			t.Fatal(err)
		}
		if again := line(t, got); !bytes.Equal(again, want) {
			t.Errorf("read back as %s, want %s", again, want)
		}
		if string(got.PIN) != string(m.PIN) || string(got.Current) != string(m.Current) {
			t.Errorf("read back PIN %q current %q, want %q %q", got.PIN, got.Current, m.PIN, m.Current)
		}
	}
}

// TestLinkWipe: Message.wipe clears the secret bytes in place.
func TestLinkWipe(t *testing.T) {
	pin, cur := []byte(linkPIN), []byte(linkCurrent)
	m := &Message{T: TAnswer, PIN: pin, Current: cur}
	m.wipe()
	if m.PIN != nil || m.Current != nil || len(bytes.Trim(append(pin, cur...), "\x00")) != 0 {
		t.Fatalf("after wipe: %q %q", pin, cur)
	}
}
