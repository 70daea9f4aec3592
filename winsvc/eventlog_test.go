package winsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeEventLog records events as "kind id: text".
type fakeEventLog struct {
	events []string
	err    error
}

func (l *fakeEventLog) add(kind string, id uint32, msg string) error {
	l.events = append(l.events, fmt.Sprintf("%s %d: %s", kind, id, msg))
	return l.err
}
func (l *fakeEventLog) Info(id uint32, msg string) error    { return l.add("info", id, msg) }
func (l *fakeEventLog) Warning(id uint32, msg string) error { return l.add("warning", id, msg) }
func (l *fakeEventLog) Error(id uint32, msg string) error   { return l.add("error", id, msg) }

// TestEventHandler: each record at the level or above is one event of its
// kind and id, its text the message and attributes without time or level;
// attributes and groups added with With are kept; records below the level
// are not written.
func TestEventHandler(t *testing.T) {
	var l fakeEventLog
	log := slog.New(EventHandler(&l, slog.LevelInfo))
	log.Debug("not written")
	log.Info("agent ready", "url", "ws://127.0.0.1:27140/v1/ws")
	log.Warn("request refused: origin not allowed", "origin", "https://evil.example")
	log.Error("cardwright serve stopped", "err", errors.New("listening on 127.0.0.1:27140: address in use"))
	log.With("job", "j1").WithGroup("card").Info("job done", "reader", "Reader 0")
	want := []string{
		"info 1: msg=\"agent ready\" url=ws://127.0.0.1:27140/v1/ws",
		"warning 2: msg=\"request refused: origin not allowed\" origin=https://evil.example",
		"error 3: msg=\"cardwright serve stopped\" err=\"listening on 127.0.0.1:27140: address in use\"",
		"info 1: msg=\"job done\" job=j1 card.reader=\"Reader 0\"",
	}
	if strings.Join(l.events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(l.events, "\n"), strings.Join(want, "\n"))
	}

	// Warn and above only.
	l.events = nil
	log = slog.New(EventHandler(&l, slog.LevelWarn))
	log.Info("agent ready")
	log.Warn("slow")
	if len(l.events) != 1 || !strings.HasPrefix(l.events[0], "warning 2: ") {
		t.Errorf("at level warn: %q", l.events)
	}

	// The event log's error reaches the caller of Handle.
	l.err = errors.New("event log is full")
	if err := EventHandler(&l, slog.LevelInfo).Handle(t.Context(), slog.NewRecord(time.Time{}, slog.LevelInfo, "x", 0)); err == nil {
		t.Error("the event log's error was not returned")
	}
}

// TestEventHandlerLong: a record longer than MaxEventBytes is cut at a
// character boundary and marked.
func TestEventHandlerLong(t *testing.T) {
	var l fakeEventLog
	slog.New(EventHandler(&l, slog.LevelInfo)).Info("big", "value", strings.Repeat("ä", MaxEventBytes))
	if len(l.events) != 1 {
		t.Fatalf("%d events", len(l.events))
	}
	text := strings.TrimPrefix(l.events[0], "info 1: ")
	if len(text) > MaxEventBytes+len("…") || !strings.HasSuffix(text, "…") || !utf8.ValidString(text) {
		t.Errorf("event of %d bytes, ends %q, valid UTF-8 %v", len(text), text[len(text)-8:], utf8.ValidString(text))
	}
}
