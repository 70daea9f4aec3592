//go:build unix

package main

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/cardwright/cardwright/batch"
)

// chanWriter hands each write to a channel.
type chanWriter chan string

func (w chanWriter) Write(b []byte) (int, error) { w <- string(b); return len(b), nil }

// TestBatchSignals: the first SIGINT stops the batch from starting a new
// card and says a second one cancels the running cards; the second cancels
// them (the context the cards run under ends).
func TestBatchSignals(t *testing.T) {
	out := make(chanWriter, 4)
	cards, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := batchSignals(context.Background(), &cmdEnv{stderr: out}, &batch.Batch{}, cancel)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if msg := <-out; !strings.Contains(msg, "Ctrl-C again cancels them") {
		t.Fatalf("after the first Ctrl-C: %q", msg)
	}
	if cards.Err() != nil {
		t.Fatal("the first Ctrl-C cancelled the running cards")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-cards.Done()
}
