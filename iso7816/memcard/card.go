// Package memcard is an in-memory ISO/IEC 7816-4/-9 card: a file tree (MF,
// DFs by FID and DF name, transparent and linear-fixed EFs, SFIs), CREATE
// FILE with an FCP and compact security attributes enforced once the card is
// operational, PIN/PUK credentials with retry counters, the ISO/IEC 7816-9
// life cycle, GET DATA for the serial number and GET CHALLENGE. It keeps an
// APDU transcript with secrets masked and injects faults (failures after N
// APDUs, card removal, latency). Its behaviour is written down in
// docs/vcard.md; cmd/vcard serves it to pcscd through vpcd.
//
// A Card is safe for concurrent use.
package memcard

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cardwright/cardwright/iso7816"
)

// Config sets up a card. The zero Config is a short-APDU card with the
// default ATR and serial number.
type Config struct {
	// ATR is the answer to reset; nil means DefaultATR(Extended).
	ATR []byte
	// Serial is what GET DATA 005A returns; nil means DefaultSerial.
	Serial []byte
	// Extended makes the card accept extended-length APDUs (Lc in three
	// bytes, Le in two or three) and announce it in the default ATR.
	Extended bool
	// MaxNc is the largest data field accepted in one command (longer ones
	// get 6700; use command chaining). 0 means 255, or 65535 if Extended.
	MaxNc int
	// MaxNe is the largest data field sent in one response; more data is
	// announced with 61xx and fetched with GET RESPONSE. 0 means 256, or
	// 65536 if Extended.
	MaxNe int
	// AlwaysGetResponse makes every response with data go through 61xx and
	// GET RESPONSE, as a T=0 card does.
	AlwaysGetResponse bool
	// NoChaining makes the card refuse command chaining with 6884.
	NoChaining bool
	// Memory is the number of bytes of EF data the card can hold (6A84
	// beyond); 0 means 64 KiB.
	Memory int
	// Rand is the source of GET CHALLENGE bytes; nil means crypto/rand.
	Rand io.Reader
	// Mask decides which commands have their data field masked in the
	// transcript; nil means DefaultMask. Use NoMask to record everything.
	Mask func(iso7816.Command) bool
	// TranscriptLimit is the number of most recent exchanges kept; 0 means
	// 4096, a negative value keeps none.
	TranscriptLimit int
	// Latency is slept before each APDU is processed.
	Latency time.Duration
}

// DefaultSerial is the serial number of a card configured without one.
var DefaultSerial = []byte{0x43, 0x57, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}

// DefaultATR returns the ATR of a card configured without one: T=1, with
// historical bytes in compact-TLV (ISO/IEC 7816-4 §12.1.1) carrying the card
// capabilities (tag 7, three bytes): selection by DF name, path and FID, SFI
// and record numbers supported; data unit one byte; command chaining, and
// extended Lc/Le when extended is true.
func DefaultATR(extended bool) []byte {
	third := byte(0x80) // b8: command chaining
	if extended {
		third |= 0x40 // b7: extended Lc and Le fields
	}
	hist := []byte{0x80, 0x73, 0xB6, 0x01, third}
	// TS, T0 (TD1 present, K historical bytes), TD1 (TD2 present, T=1), TD2 (T=1).
	atr := []byte{0x3B, 0x80 | byte(len(hist)), 0x81, 0x01}
	atr = append(atr, hist...)
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

// DefaultMask masks the data of the commands that carry credentials:
// VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER and PUT DATA of a
// credential object (P1 01).
func DefaultMask(c iso7816.Command) bool {
	switch c.INS {
	case iso7816.InsVerify, iso7816.InsChangeReferenceData, iso7816.InsResetRetryCounter:
		return true
	case iso7816.InsPutData:
		return c.P1 == 0x01
	}
	return false
}

// NoMask records every command as sent. Use it only where the transcript
// holds test PINs.
func NoMask(iso7816.Command) bool { return false }

// Entry is one exchange in the transcript.
type Entry struct {
	Seq      int    // 1 for the first APDU since the card was made or the transcript cleared
	Command  []byte // as received; with the data field bytes replaced by 2A ('*') when Masked
	Response []byte // nil when Err is set
	Err      error  // a transport failure injected by fault injection
	Masked   bool
}

// String renders the entry as hex, masked data shown as <N secret bytes>.
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(formatCommand(e.Command, e.Masked))
	b.WriteString(" -> ")
	if e.Err != nil {
		b.WriteString("error: " + e.Err.Error())
	} else {
		b.WriteString(strings.ToUpper(hex.EncodeToString(e.Response)))
	}
	return b.String()
}

// FormatAPDU renders a command APDU as hex for logs, its data field shown
// as <N secret bytes> when mask (nil: DefaultMask) says so.
func FormatAPDU(raw []byte, mask func(iso7816.Command) bool) string {
	masked, m := maskCommand(raw, mask)
	return formatCommand(masked, m)
}

func formatCommand(raw []byte, masked bool) string {
	up := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	if !masked {
		return up(raw)
	}
	c, err := iso7816.ParseCommand(raw)
	if err != nil || len(c.Data) == 0 {
		return up(raw)
	}
	// Header and Lc, the masked data, then Le.
	start := len(raw) - len(c.Data)
	if c.Ne > 0 {
		if len(raw) > 4 && raw[4] == 0 {
			start -= 2
		} else {
			start--
		}
	}
	return fmt.Sprintf("%s <%d secret bytes> %s", up(raw[:start]), len(c.Data), up(raw[start+len(c.Data):]))
}

// maskCommand returns raw with its data field replaced by '*' bytes when
// mask says so. A command that does not parse but names a credential
// instruction is masked whole after the header.
func maskCommand(raw []byte, mask func(iso7816.Command) bool) ([]byte, bool) {
	if mask == nil {
		mask = DefaultMask
	}
	c, err := iso7816.ParseCommand(raw)
	if err != nil {
		if len(raw) > 4 && DefaultMask(iso7816.Command{CLA: raw[0], INS: raw[1], P1: raw[2], P2: raw[3], Data: raw[4:]}) {
			out := slices.Clone(raw)
			for i := 4; i < len(out); i++ {
				out[i] = '*'
			}
			return out, true
		}
		return slices.Clone(raw), false
	}
	if len(c.Data) == 0 || !mask(c) {
		return slices.Clone(raw), false
	}
	out := slices.Clone(raw)
	start := len(raw) - len(c.Data)
	if c.Ne > 0 {
		if raw[4] == 0 {
			start -= 2
		} else {
			start--
		}
	}
	for i := start; i < start+len(c.Data); i++ {
		out[i] = '*'
	}
	return out, true
}

// Card is the in-memory card. Create it with New.
type Card struct {
	mu  sync.Mutex
	cfg Config

	atr, serial  []byte
	maxNc, maxNe int
	memory       int
	rand         io.Reader

	// Card state (docs/vcard.md).
	mf         *file
	curDF      *file
	curEF      *file
	creds      map[byte]*credential
	terminated bool
	used       int
	chain      *chain
	pending    []byte // response data waiting for GET RESPONSE

	transcript []Entry // a ring once full: the oldest entry is at head
	head       int
	seq        int

	// Faults.
	removed   bool
	failAfter int
	failErr   error
	latency   time.Duration
}

type chain struct {
	ins, p1, p2 byte
	data        []byte
}

// maxChain bounds the data a command chain may carry.
const maxChain = 65535

// New returns a virgin card: no file system, no credentials.
func New(cfg Config) *Card {
	c := &Card{cfg: cfg, creds: map[byte]*credential{}, latency: cfg.Latency}
	c.atr = slices.Clone(cfg.ATR)
	if c.atr == nil {
		c.atr = DefaultATR(cfg.Extended)
	}
	c.serial = slices.Clone(cfg.Serial)
	if c.serial == nil {
		c.serial = slices.Clone(DefaultSerial)
	}
	c.maxNc, c.maxNe = iso7816.MaxShortNc, iso7816.MaxShortNe
	if cfg.Extended {
		c.maxNc, c.maxNe = iso7816.MaxExtendedNc, iso7816.MaxExtendedNe
	}
	if cfg.MaxNc > 0 {
		c.maxNc = min(cfg.MaxNc, c.maxNc)
	}
	if cfg.MaxNe > 0 {
		c.maxNe = min(cfg.MaxNe, c.maxNe)
	}
	c.memory = cfg.Memory
	if c.memory <= 0 {
		c.memory = 64 << 10
	}
	c.rand = cfg.Rand
	if c.rand == nil {
		c.rand = rand.Reader
	}
	return c
}

// ATR returns the answer to reset.
func (c *Card) ATR() []byte { return slices.Clone(c.atr) }

// Limits returns the APDU sizes the card takes, for iso7816.Exchange. With
// command chaining the card takes more than MaxNc in one chain.
func (c *Card) Limits() iso7816.Limits {
	return iso7816.Limits{MaxNc: c.maxNc, MaxNe: c.maxNe}
}

// Reset is a warm reset or power cycle: the security status (verified
// credentials), the current file, pending chains and responses are cleared.
// Files and credentials stay.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *Card) resetLocked() {
	for _, cr := range c.creds {
		cr.verified = false
	}
	c.curDF, c.curEF = c.mf, nil
	c.chain, c.pending = nil, nil
}

// Operational reports whether the MF's life cycle is operational: access
// rules are enforced.
func (c *Card) Operational() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.operational()
}

// Tries returns the retry counter of credential ref.
func (c *Card) Tries(ref byte) (tries int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr := c.creds[ref]
	if cr == nil {
		return 0, false
	}
	return cr.tries, true
}

// Remove takes the card out of the reader: every Transmit returns an error
// wrapping iso7816.ErrCardRemoved until Insert.
func (c *Card) Remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = true
}

// Insert puts the card back; it comes up as after a power-on (Reset).
func (c *Card) Insert() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = false
	c.resetLocked()
}

// FailAfter makes Transmit return err for every APDU after the next n ones
// (n = 0: from the next one) until ClearFaults. Failed APDUs are not
// processed by the card.
func (c *Card) FailAfter(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failAfter, c.failErr = max(n, 0), err
}

// SetLatency sets the time slept before each APDU.
func (c *Card) SetLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
}

// ClearFaults undoes FailAfter, Remove and SetLatency.
func (c *Card) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failErr, c.failAfter, c.latency = nil, 0, 0
	if c.removed {
		c.removed = false
		c.resetLocked()
	}
}

// Transcript returns a copy of the recorded exchanges, oldest first.
func (c *Card) Transcript() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.transcript))
	for _, part := range [][]Entry{c.transcript[c.head:], c.transcript[:c.head]} {
		for _, e := range part {
			e.Command, e.Response = slices.Clone(e.Command), slices.Clone(e.Response)
			out = append(out, e)
		}
	}
	return out
}

// ClearTranscript forgets the recorded exchanges and restarts Seq at 1.
func (c *Card) ClearTranscript() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transcript, c.head, c.seq = nil, 0, 0
}

// Transmit processes one command APDU and returns the response APDU. It
// implements iso7816.Card.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	lat := c.latency
	c.mu.Unlock()
	if lat > 0 {
		time.Sleep(lat)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	var resp []byte
	switch {
	case c.removed:
		err = fmt.Errorf("transmitting to the in-memory card: %w", iso7816.ErrCardRemoved)
	case c.failErr != nil && c.failAfter == 0:
		err = c.failErr
	default:
		if c.failErr != nil {
			c.failAfter--
		}
		resp = c.process(cmd)
	}
	c.record(cmd, resp, err)
	return resp, err
}

func (c *Card) record(cmd, resp []byte, err error) {
	limit := c.cfg.TranscriptLimit
	if limit == 0 {
		limit = 4096
	}
	c.seq++
	if limit < 0 {
		return
	}
	masked, m := maskCommand(cmd, c.cfg.Mask)
	e := Entry{Seq: c.seq, Command: masked, Response: slices.Clone(resp), Err: err, Masked: m}
	if len(c.transcript) < limit {
		c.transcript = append(c.transcript, e)
		return
	}
	// Full: overwrite the oldest entry (copying the whole transcript on
	// every APDU cost ~10 µs once 4096 entries were kept).
	c.transcript[c.head] = e
	c.head = (c.head + 1) % limit
}
