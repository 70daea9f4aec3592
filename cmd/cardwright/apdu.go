package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/iso7816"
	"github.com/cardwright/cardwright/iso7816/memcard"
	"github.com/cardwright/cardwright/pcsc"
)

var apduCmd = &command{
	name:    "apdu",
	args:    "--reader NAME [--extended] [--auto] [--exclusive] HEX…",
	summary: "send APDUs to the card in a reader and show the answers",
	detail:  "Each HEX is one command APDU; spaces and colons inside it are ignored.",
}

func init() {
	apduCmd.run = runAPDU
	register(apduCmd)
}

const apduUsage = "usage: cardwright apdu --reader NAME [--extended] [--auto] [--exclusive] HEX…"

func runAPDU(_ context.Context, env *cmdEnv, args []string) int {
	fs := apduCmd.flags(env)
	reader := fs.String("reader", "", "`NAME` of the reader, as `cardwright readers` prints it")
	extended := fs.Bool("extended", false, "allow extended-length APDUs (for cards that take them)")
	auto := fs.Bool("auto", false, "answer 61xx with GET RESPONSE and 6Cxx with the right Le, and show the joined response")
	exclusive := fs.Bool("exclusive", false, "connect exclusively (default: shared)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if *reader == "" {
		fmt.Fprintln(env.stderr, "cardwright apdu: --reader is required; "+apduUsage)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(env.stderr, "cardwright apdu: no APDU given; "+apduUsage)
		return exitUsage
	}
	// Every APDU is checked before anything is sent.
	cmds := make([][]byte, fs.NArg())
	anyExtended := 0
	for i, arg := range fs.Args() {
		raw, err := parseAPDUArg(arg, *extended)
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright apdu: APDU %d: %v\n", i+1, err)
			return exitUsage
		}
		cmds[i] = raw
		if c, _ := iso7816.ParseCommand(raw); c.Extended() && anyExtended == 0 {
			anyExtended = i + 1
		}
	}

	pc, err := pcsc.Open()
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright apdu: %v\n", err)
		return exitFailure
	}
	defer pc.Close()
	mode := pcsc.Shared
	if *exclusive {
		mode = pcsc.Exclusive
	}
	card, err := pc.Connect(*reader, mode)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright apdu: %s\n", apduConnectError(pc, *reader, err))
		return exitFailure
	}
	defer card.Close()
	// A card that says in its ATR that it takes no extended lengths
	// (ISO 7816-4 §8.1.1.2.7) is not sent any.
	if anyExtended > 0 {
		if a, err := iso7816.ParseATR(card.ATR()); err == nil {
			if caps, ok := a.Capabilities(); ok && !caps.ExtendedLength {
				fmt.Fprintf(env.stderr, "cardwright apdu: APDU %d: the card in %q takes no extended-length APDUs (its ATR says so); nothing sent\n", anyExtended, *reader)
				return exitFailure
			}
		}
	}

	lim := iso7816.Limits{}
	if *extended {
		lim = iso7816.Limits{MaxNc: iso7816.MaxExtendedNc, MaxNe: iso7816.MaxExtendedNe}
	}
	for _, raw := range cmds {
		// The command is echoed with credential data (VERIFY, …) masked.
		fmt.Fprintf(env.stdout, "> %s\n", memcard.FormatAPDU(raw, nil))
		var r iso7816.Response
		if *auto {
			cmd, _ := iso7816.ParseCommand(raw) // checked above
			r, err = iso7816.Exchange(card, cmd, lim)
		} else {
			var resp []byte
			if resp, err = card.Transmit(raw); err == nil {
				r, err = iso7816.ParseResponse(resp)
			}
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright apdu: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(env.stdout, "< %s\n", formatResponse(r))
	}
	return exitOK
}

// parseAPDUArg decodes one command-line APDU and checks that it is a
// well-formed command APDU (ISO 7816-4 §5.1) that fits the short encoding
// unless extended is set.
func parseAPDUArg(arg string, extended bool) ([]byte, error) {
	s := strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(arg)
	if s == "" {
		return nil, errors.New("empty")
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		var inv hex.InvalidByteError
		switch {
		case errors.As(err, &inv):
			return nil, fmt.Errorf("%q is not hexadecimal (bad character %q)", arg, rune(inv))
		case errors.Is(err, hex.ErrLength):
			return nil, fmt.Errorf("%q has an odd number of hex digits", arg)
		}
		return nil, fmt.Errorf("%q is not hexadecimal", arg)
	}
	cmd, err := iso7816.ParseCommand(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a command APDU: %w", strings.ToUpper(s), err)
	}
	if cmd.Extended() && !extended {
		return nil, fmt.Errorf("%d data bytes and Ne %d need an extended-length APDU, which a short card does not take (limits %d and %d; add --extended if the card takes them)",
			len(cmd.Data), cmd.Ne, iso7816.MaxShortNc, iso7816.MaxShortNe)
	}
	return raw, nil
}

// apduConnectError turns a connection failure into one line; for an
// unknown reader it names the readers there are.
func apduConnectError(pc *pcsc.Context, reader string, err error) string {
	switch {
	case errors.Is(err, pcsc.ErrUnknownReader):
		names, lerr := pc.Readers(nil)
		if lerr != nil || len(names) == 0 {
			return fmt.Sprintf("unknown reader %q (no readers found)", reader)
		}
		return fmt.Sprintf("unknown reader %q (readers: %s)", reader, strings.Join(quoteAll(names), ", "))
	case errors.Is(err, pcsc.ErrNoCard):
		return fmt.Sprintf("no card in reader %q", reader)
	}
	return err.Error()
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

// formatResponse prints data and status word as hex and the status word's
// meaning: "0102 9000 (success)".
func formatResponse(r iso7816.Response) string {
	sw := fmt.Sprintf("%04X (%s)", r.SW, iso7816.SWMeaning(r.SW))
	if len(r.Data) == 0 {
		return sw
	}
	return strings.ToUpper(hex.EncodeToString(r.Data)) + " " + sw
}
