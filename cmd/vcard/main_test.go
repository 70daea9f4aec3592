package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
)

// vpcd is the reader side of the protocol, as pcscd's vpcd driver speaks
// it: the length and the payload of a frame in two writes.
type vpcd struct {
	t    testing.TB
	conn net.Conn
}

func (v *vpcd) send(payload []byte) {
	v.t.Helper()
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(payload)))
	if _, err := v.conn.Write(hdr[:]); err != nil {
		v.t.Fatal(err)
	}
	if _, err := v.conn.Write(payload); err != nil {
		v.t.Fatal(err)
	}
}

func (v *vpcd) recv() []byte {
	v.t.Helper()
	msg, err := readFrame(v.conn, nil)
	if err != nil {
		v.t.Fatalf("reading the card's answer: %v", err)
	}
	return msg
}

func (v *vpcd) exchange(payload []byte) []byte {
	v.t.Helper()
	v.send(payload)
	return v.recv()
}

func startServe(t *testing.T, card *memcard.Card) (*vpcd, <-chan error) {
	t.Helper()
	reader, cardSide := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- serve(ctx, cardSide, card, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		reader.Close()
		<-finished
	})
	return &vpcd{t: t, conn: reader}, done
}

func TestServeFraming(t *testing.T) {
	card := memcard.New(memcard.Config{Serial: []byte{0xC0, 0xDE}})
	v, _ := startServe(t, card)
	// Power on and reset get no answer; the next frame does.
	v.send([]byte{ctlPowerOn})
	v.send([]byte{ctlReset})
	if atr := v.exchange([]byte{ctlATR}); !bytes.Equal(atr, card.ATR()) {
		t.Errorf("ATR frame = %X, want %X", atr, card.ATR())
	}
	gd, _ := iso7816.GetData(iso7816.TagSerialNumber, 256).Bytes()
	if resp := v.exchange(gd); !bytes.Equal(resp, []byte{0xC0, 0xDE, 0x90, 0x00}) {
		t.Errorf("GET DATA = %X", resp)
	}
	if resp := v.exchange([]byte{0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00}); !bytes.Equal(resp, []byte{0x6A, 0x82}) {
		t.Errorf("SELECT MF on a virgin card = %X", resp)
	}
	// An unknown control code is ignored.
	v.send([]byte{0x09})
	// A large response goes out in one frame.
	card2 := memcard.New(memcard.Config{Extended: true})
	v2, _ := startServe(t, card2)
	ch, _ := iso7816.GetChallenge(4000).Bytes()
	if resp := v2.exchange(ch); len(resp) != 4002 || !bytes.Equal(resp[4000:], []byte{0x90, 0x00}) {
		t.Errorf("GET CHALLENGE 4000: %d bytes", len(resp))
	}
	// Under fault injection the card is mute: an empty frame.
	card.FailAfter(0, errors.New("injected"))
	if resp := v.exchange(gd); len(resp) != 0 {
		t.Errorf("failing card answered %X", resp)
	}
	card.ClearFaults()
	// Power off resets the security state, not the files.
	v.send([]byte{ctlPowerOff})
	if resp := v.exchange(gd); !bytes.Equal(resp, []byte{0xC0, 0xDE, 0x90, 0x00}) {
		t.Errorf("GET DATA after power off = %X", resp)
	}
}

func TestServeEndsWithTheConnection(t *testing.T) {
	v, done := startServe(t, memcard.New(memcard.Config{}))
	v.conn.Write([]byte{0x00, 0x05, 0x00}) // a truncated frame, then EOF
	v.conn.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("serve returned nil on a broken frame")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after the connection closed")
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), []byte{0, 3, 1, 2, 3}) {
		t.Errorf("writeFrame = %X", buf.Bytes())
	}
	calls := 0
	msg, err := readFrame(&buf, func() { calls++ })
	if err != nil || !bytes.Equal(msg, []byte{1, 2, 3}) || calls != 2 {
		t.Errorf("readFrame = %X, %v (%d hooks)", msg, err, calls)
	}
	if err := writeFrame(&buf, make([]byte, 0x10000)); err == nil {
		t.Error("writeFrame took a 64 KiB payload")
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 4, 1}), nil); err == nil {
		t.Error("readFrame accepted a truncated frame")
	}
	if msg, err := readFrame(bytes.NewReader([]byte{0, 0}), nil); err != nil || len(msg) != 0 {
		t.Errorf("empty frame = %X, %v", msg, err)
	}
}

func TestRunArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--port", "0"},
		{"--port", "70000"},
		{"--atr", "3B0G"},
		{"--serial", "ABC"},
		{"extra"},
		{"--nosuchflag"},
	} {
		var stderr strings.Builder
		if code := run(context.Background(), args, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if stderr.Len() == 0 {
			t.Errorf("run(%q) printed nothing", args)
		}
	}
}

// listenVPCD stands in for pcscd's vpcd driver: it listens, and hands out
// the connections vcard makes.
func listenVPCD(t testing.TB) (port int, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(ch)
				return
			}
			c.(*net.TCPConn).SetNoDelay(false) // as vpcd: Nagle on
			ch <- c
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

func accept(t testing.TB, conns <-chan net.Conn) *vpcd {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return &vpcd{t: t, conn: c}
	case <-time.After(10 * time.Second):
		t.Fatal("vcard did not connect")
		return nil
	}
}

// TestRunReconnects: when the reader side drops the connection, vcard
// connects again and serves the same card (files survive).
func TestRunReconnects(t *testing.T) {
	port, conns := listenVPCD(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--port", strconv.Itoa(port), "--serial", "C0DE01"}, io.Discard) }()
	v := accept(t, conns)
	cf, _ := iso7816.CreateFile(iso7816.FCP{FID: 0x3F00, FDB: iso7816.FDBDF})
	raw, _ := cf.Bytes()
	if resp := v.exchange(raw); !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("CREATE FILE MF = %X", resp)
	}
	v.conn.Close()
	v = accept(t, conns)
	sel, _ := iso7816.SelectMF().Bytes()
	if resp := v.exchange(sel); !bytes.HasSuffix(resp, []byte{0x90, 0x00}) {
		t.Errorf("SELECT MF after reconnecting = %X (the card lost its files)", resp)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run = %d after cancel", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop on cancel")
	}
}

// BenchmarkVPCDRoundTrip times one GET CHALLENGE over loopback TCP with a
// reader side that writes like vpcd (length and payload separately, Nagle
// on). Without quick ACKs on the card side this costs ~40 ms (delayed ACK);
// with them, tens of microseconds.
func BenchmarkVPCDRoundTrip(b *testing.B) {
	for _, quick := range []bool{false, true} {
		b.Run("quickack="+strconv.FormatBool(quick), func(b *testing.B) {
			port, conns := listenVPCD(b)
			c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			card := memcard.New(memcard.Config{})
			go func() {
				hook := func() {}
				if quick {
					hook = func() { quickAck(c) }
				}
				for {
					msg, err := readFrame(c, hook)
					if err != nil {
						return
					}
					if writeFrame(c, answer(card, msg)) != nil {
						return
					}
				}
			}()
			v := accept(b, conns)
			cmd, _ := iso7816.GetChallenge(8).Bytes()
			for b.Loop() {
				if resp := v.exchange(cmd); len(resp) != 10 {
					b.Fatalf("GET CHALLENGE = %X", resp)
				}
			}
		})
	}
}
