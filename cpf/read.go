package cpf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cardwright/cardwright/iso7816"
)

// PersInfoFile returns the path below the MF of the EF that receives the
// personalization data (PERSINFO_SEC() or PERSINFO_PUT_PUBRSA_AND_SEC()),
// for reading the encrypted PINs back; false when the profile writes none.
func (p *Program) PersInfoFile() ([]uint16, bool) {
	for _, n := range p.nodes {
		if n.content == nil {
			continue
		}
		for _, l := range n.content.Lines {
			if c, ok := l.Value.(*Call); ok && (strings.EqualFold(c.Name, fnSec) || strings.EqualFold(c.Name, fnPubRSAAndSec)) {
				return n.path(), true
			}
		}
	}
	return nil, false
}

// ReadFile reads a whole transparent EF, selected by its path from the MF
// (SELECT P1 08, ISO/IEC 7816-4 §11.2.2): its size comes from the FCP
// (tag 80) when the card returns one, else reading stops at the end of
// the file (6282 or a short answer) or after limit bytes. It is how the
// encrypted PINs are read back: pass the result to pinblob.Open.
func ReadFile(ctx context.Context, card iso7816.Card, path []uint16, limit int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fcpData, err := iso7816.Send(card, iso7816.SelectPath(true, path...))
	if err != nil {
		return nil, fmt.Errorf("selecting %s: %w", pathString(path), err)
	}
	size := limit
	if f, err := iso7816.ParseFCP(fcpData); err == nil && f.Size > 0 {
		size = min(f.Size, limit)
	}
	var out []byte
	for len(out) < size {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cmd, err := iso7816.ReadBinary(len(out), min(size-len(out), iso7816.MaxShortNe))
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", pathString(path), err)
		}
		r, err := iso7816.Exchange(card, cmd, iso7816.Limits{})
		if err != nil {
			return out, fmt.Errorf("reading %s at offset %d: %w", pathString(path), len(out), err)
		}
		out = append(out, r.Data...)
		switch {
		case r.SW == iso7816.SWEndOfFile:
			return out, nil
		case r.SW != iso7816.SWOK:
			err := r.Err()
			if errors.Is(err, iso7816.ErrWrongP1P2) && len(out) > 0 {
				return out, nil // offset past the end: the file ended exactly at a chunk boundary
			}
			return out, fmt.Errorf("reading %s at offset %d: %w", pathString(path), len(out), err)
		case len(r.Data) == 0 || len(r.Data) < cmd.Ne:
			return out, nil
		}
	}
	return out, nil
}

func pathString(path []uint16) string {
	var b strings.Builder
	b.WriteString("3F00")
	for _, fid := range path {
		fmt.Fprintf(&b, "/%04X", fid)
	}
	return b.String()
}
