// Command vcard puts the project's in-memory card (iso7816/memcard) into a
// vpcd virtual reader, so that pcscd and every PC/SC client see it like a
// card in a real reader.
//
//	vcard --port 35965 [--host 127.0.0.1] [--atr HEX] [--serial HEX] [--extended]
//
// The card lives as long as the process: a power cycle from the reader resets
// the security status but keeps files and credentials; killing the process
// removes the card. When the connection to vpcd drops (pcscd restarted), vcard
// reconnects by itself with the same card.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cardwright/cardwright/iso7816/memcard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run serves the card until ctx is done; it returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("vcard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "vpcd host")
	port := fs.Int("port", 35963, "vpcd port of the reader")
	atrHex := fs.String("atr", "", "answer to reset, hex (default: memcard's)")
	serialHex := fs.String("serial", "", "card serial number returned by GET DATA 005A, hex")
	extended := fs.Bool("extended", false, "accept extended-length APDUs")
	latency := fs.Duration("latency", 0, "delay added before each APDU")
	verbose := fs.Bool("v", false, "log every APDU (data of PIN commands masked)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *port <= 0 || *port > 65535 {
		fmt.Fprintln(stderr, "usage: vcard --port N [--host H] [--atr HEX] [--serial HEX] [--extended] [--latency D] [-v]")
		return 2
	}
	cfg := memcard.Config{Extended: *extended, Latency: *latency}
	var err error
	if cfg.ATR, err = parseHex(*atrHex); err != nil {
		fmt.Fprintf(stderr, "vcard: --atr: %v\n", err)
		return 2
	}
	if cfg.Serial, err = parseHex(*serialHex); err != nil {
		fmt.Fprintf(stderr, "vcard: --serial: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	card := memcard.New(cfg)
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	dialer := net.Dialer{Timeout: 2 * time.Second}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Debug("connecting to vpcd", "addr", addr, "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		log.Info("connected to vpcd", "addr", addr)
		err = serve(ctx, conn, card, *verbose, log)
		conn.Close()
		if ctx.Err() != nil {
			break
		}
		log.Info("vpcd connection lost; reconnecting", "err", err)
		sleep(ctx, backoff)
	}
	return 0
}

// serve answers vpcd on one connection until it closes or ctx is done.
func serve(ctx context.Context, conn net.Conn, card *memcard.Card, verbose bool, log *slog.Logger) error {
	if tc, ok := conn.(*net.TCPConn); ok {
		// Go sets TCP_NODELAY by default; say so explicitly because a
		// Nagle delay here would add ~40 ms to every APDU.
		_ = tc.SetNoDelay(true)
	}
	// vpcd writes a frame's length and its payload in two send calls on a
	// socket with Nagle's algorithm on: the payload waits until the length
	// is acknowledged, and a delayed ACK from this side costs ~40 ms per
	// APDU. Quick ACKs (re-armed before each read) remove that wait.
	quick := func() { quickAck(conn) }
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var before int
	for {
		msg, err := readFrame(conn, quick)
		if err != nil {
			return err
		}
		resp := answer(card, msg)
		if resp == nil {
			continue
		}
		if err := writeFrame(conn, resp); err != nil {
			return err
		}
		if verbose && len(msg) > 1 {
			tr := card.Transcript()
			for _, e := range tr[min(before, len(tr)):] {
				log.Info("apdu", "exchange", e.String())
			}
			before = len(tr)
		}
	}
}

// vpcd control codes (a one-byte payload), per the vsmartcard vpcd protocol.
const (
	ctlPowerOff = 0
	ctlPowerOn  = 1
	ctlReset    = 2
	ctlATR      = 4
)

// answer returns what to send back for one vpcd message, or nil for none.
func answer(card *memcard.Card, msg []byte) []byte {
	if len(msg) == 1 {
		switch msg[0] {
		case ctlPowerOff, ctlPowerOn, ctlReset:
			card.Reset()
			return nil
		case ctlATR:
			return card.ATR()
		default:
			return nil
		}
	}
	resp, err := card.Transmit(msg)
	if err != nil {
		// The memcard fails only under fault injection; the reader then
		// sees a mute card (an empty answer).
		return []byte{}
	}
	return resp
}

// maxFrame bounds a vpcd frame: the length prefix is two bytes.
const maxFrame = 0xFFFF

// readFrame reads one length-prefixed frame; beforeRead (may be nil) runs
// before each blocking read.
func readFrame(r io.Reader, beforeRead func()) ([]byte, error) {
	if beforeRead == nil {
		beforeRead = func() {}
	}
	var hdr [2]byte
	beforeRead()
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0])<<8 | int(hdr[1])
	buf := make([]byte, n)
	beforeRead()
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
	}
	return buf, nil
}

func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("response of %d bytes exceeds the vpcd frame", len(payload))
	}
	frame := make([]byte, 2+len(payload))
	frame[0], frame[1] = byte(len(payload)>>8), byte(len(payload))
	copy(frame[2:], payload)
	_, err := w.Write(frame) // one write: length and payload in one segment
	return err
}

func parseHex(s string) ([]byte, error) {
	s = strings.NewReplacer(" ", "", ":", "").Replace(s)
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("not hexadecimal")
	}
	return b, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
