package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cardwright/cardwright/config"
	"github.com/cardwright/cardwright/pcsc"
)

var readersCmd = &command{
	name:    "readers",
	args:    "[--json] [--all] [--config FILE]",
	summary: "list the card readers, their cards, ATRs and protocols",
	detail:  "Readers on the configuration's skip list are left out unless --all is given.",
}

func init() {
	readersCmd.run = runReaders
	register(readersCmd)
}

// readerInfo is one element of `cardwright readers --json`. The field names
// are a contract other tools rely on: add fields, never rename them.
type readerInfo struct {
	Name     string `json:"name"`
	Present  bool   `json:"present"`
	ATR      string `json:"atr"`      // upper-case hex without spaces; "" without a card
	Protocol string `json:"protocol"` // "T=0", "T=1", or "" when unknown
	InUse    bool   `json:"in_use"`   // another application is connected
	Locked   bool   `json:"locked"`   // another application holds it exclusively
	Mute     bool   `json:"mute"`     // a card that did not answer the reset
}

func runReaders(_ context.Context, env *cmdEnv, args []string) int {
	fs := readersCmd.flags(env)
	asJSON := fs.Bool("json", false, "print a JSON array of {name, present, atr, protocol, …}")
	all := fs.Bool("all", false, "include the readers the configuration's skip list hides")
	cfgFile := fs.String("config", "", "configuration `FILE` (default: $"+config.EnvVar+", then the standard locations)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "cardwright readers: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var skip pcsc.Skip
	if !*all {
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintf(env.stderr, "cardwright readers: loading the configuration: %v\n", err)
			return exitFailure
		}
		skip = pcsc.Skip(cfg.ReaderSkip)
	}
	pc, err := pcsc.Open()
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright readers: %v\n", err)
		return exitFailure
	}
	defer pc.Close()
	infos, err := listReaders(pc, skip)
	if err != nil {
		fmt.Fprintf(env.stderr, "cardwright readers: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		return printReadersJSON(env.stdout, infos)
	}
	printReadersTable(env.stdout, infos)
	return exitOK
}

// listReaders reads every reader's state. The protocol is only known to a
// connection, so each present card that nobody holds exclusively is
// connected to (shared) and left as it is.
func listReaders(pc *pcsc.Context, skip pcsc.Skip) ([]readerInfo, error) {
	st, err := pc.Status(skip)
	if err != nil {
		return nil, fmt.Errorf("reading the reader states: %w", err)
	}
	infos := make([]readerInfo, 0, len(st))
	for _, r := range st {
		info := readerInfo{
			Name:    r.Name,
			Present: r.Present,
			ATR:     strings.ToUpper(hex.EncodeToString(r.ATR)),
			InUse:   r.InUse,
			Locked:  r.Locked,
			Mute:    r.Mute,
		}
		if r.Present && !r.Locked && !r.Mute {
			if k, err := pc.Connect(r.Name, pcsc.Shared); err == nil {
				info.Protocol = k.Protocol()
				if atr := k.ATR(); info.ATR == "" && len(atr) > 0 {
					info.ATR = strings.ToUpper(hex.EncodeToString(atr))
				}
				k.Close()
			}
		}
		infos = append(infos, info)
	}
	return infos, nil
}

func printReadersJSON(w io.Writer, infos []readerInfo) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(infos); err != nil {
		return exitFailure
	}
	return exitOK
}

func printReadersTable(w io.Writer, infos []readerInfo) {
	if len(infos) == 0 {
		fmt.Fprintln(w, "no readers")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "READER\tCARD\tPROTOCOL\tATR")
	for _, r := range infos {
		card := "no"
		switch {
		case r.Mute:
			card = "mute"
		case r.Locked:
			card = "yes (exclusive)"
		case r.Present:
			card = "yes"
		}
		proto := r.Protocol
		if proto == "" {
			proto = "-"
		}
		atr := r.ATR
		if atr == "" {
			atr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, card, proto, atr)
	}
	tw.Flush()
}
