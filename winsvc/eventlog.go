package winsvc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// EventLog is where a service's records go on Windows:
// golang.org/x/sys/windows/svc/eventlog's *Log has these methods.
type EventLog interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event ids, one per level. The MSI and 'service install' register the
// source with EventCreate.exe as its message file, which knows ids 1-1000.
const (
	EventInfo    uint32 = 1
	EventWarning uint32 = 2
	EventError   uint32 = 3
)

// MaxEventBytes bounds one event's text (ReportEvent takes up to 31,839
// characters a string); a longer record is cut with "…".
const MaxEventBytes = 16 << 10

// EventHandler is a slog.Handler writing each record at level or above as
// one event: the message and its attributes as key=value pairs, as
// slog.TextHandler writes them, without time and level (the event log has
// both). Warn becomes a warning event, Error and above an error event.
func EventHandler(l EventLog, level slog.Leveler) slog.Handler {
	h := &eventHandler{sink: l, mu: new(sync.Mutex), buf: new(bytes.Buffer)}
	h.text = slog.NewTextHandler(h.buf, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		}})
	return h
}

type eventHandler struct {
	sink EventLog
	mu   *sync.Mutex   // shared by the handlers WithAttrs and WithGroup make
	buf  *bytes.Buffer // text's output, one record at a time
	text slog.Handler
}

func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.text.Enabled(ctx, l)
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(h.buf.String(), "\n")
	if len(msg) > MaxEventBytes {
		cut := MaxEventBytes
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	switch {
	case r.Level >= slog.LevelError:
		return h.sink.Error(EventError, msg)
	case r.Level >= slog.LevelWarn:
		return h.sink.Warning(EventWarning, msg)
	}
	return h.sink.Info(EventInfo, msg)
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(as)
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
