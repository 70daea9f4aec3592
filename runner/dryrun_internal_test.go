package runner

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestMaskCommand: PIN commands lose their data field in a dry run's
// transcript, whatever their length fields say; other commands are shown.
func TestMaskCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd    string
		secret bool
		want   string
	}{
		{"00A4000C023F00", false, "00A4000C023F00"},
		{"0020008106343732393133", false, "0020008106 <6 secret bytes>"},
		{"002000810634373239313300", false, "0020008106 <7 secret bytes>"}, // and Le
		{"00200081", false, "00200081"},                                    // VERIFY status: no data
		{"0020008100", false, "0020008100"},                                // Le only
		{"0020008109343732393133", false, "00200081 <7 secret bytes>"},     // Lc says more than there is
		{"00200081023437323931330000", false, "0020008102 <8 secret bytes>"},
		{"0024008100000c343732393133383339323031", false, "0024008100000C <12 secret bytes>"},
		{"002C008108383339323031373400", false, "002C008108 <9 secret bytes>"},
		{"0028008102313233", false, "0028008102 <3 secret bytes>"}, // Lc says less than there is
		{"00DA01810534373239", false, "00DA0181 <5 secret bytes>"},
		{"00DA0081023437", false, "00DA0081023437"}, // PUT DATA, not a credential
		{"00D60000063437323931", true, "00D6 <8 secret bytes>"},
	} {
		cmd, err := hex.DecodeString(tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if got := maskCommand(cmd, tc.secret); got != tc.want {
			t.Errorf("maskCommand(%s, %v) = %q, want %q", tc.cmd, tc.secret, got, tc.want)
		}
	}
}

// FuzzMaskCommand: a PIN command shows at most its header and Lc (7
// bytes); every byte after them is counted, never shown.
func FuzzMaskCommand(f *testing.F) {
	f.Add([]byte{0x00, 0x20, 0x00, 0x81, 0x06, '4', '7', '2', '9', '1', '3'})
	f.Add([]byte{0x00, 0x24, 0x00, 0x81, 0x00, 0x00, 0x02, 0xAB, 0xCD})
	f.Fuzz(func(t *testing.T, cmd []byte) {
		if len(cmd) <= 5 || !isPINCommand(cmd[1], cmd[2]) {
			return
		}
		out := maskCommand(cmd, false)
		shown, _, _ := strings.Cut(out, " ")
		k := len(shown) / 2
		if k > 7 || shown != strings.ToUpper(hex.EncodeToString(cmd[:k])) || out != fmt.Sprintf("%s <%d secret bytes>", shown, len(cmd)-k) {
			t.Errorf("%X shown as %q", cmd, out)
		}
	})
}
