package softtoken

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/softstore"
)

// NSS stores soft tokens in the user's NSS database with NSS's own
// pk12util: Chromium's ~/.pki/nssdb (made, with an empty database
// password, when missing: Chromium reads it once it exists), or a Firefox
// profile's database when the request names the profile.
//
// pk12util rather than loading NSS's softokn as a PKCS#11 module: softokn
// needs its configuration directory passed in C_Initialize's reserved
// argument, which miekg/pkcs11 does not offer, and pk12util writes the
// database as Chromium and Firefox expect (nickname, key, certificate and
// chain in one transaction). The passphrase reaches pk12util through a
// pipe on file descriptor 3 (-w /dev/fd/3): never on its command line,
// never on disk. The PKCS#12 itself (encrypted) goes through a 0600
// temporary file that is removed. A database with a password of its own
// is not supported: pk12util fails (stdin is closed) and nothing is
// stored.
type NSS struct {
	Home string // "": $HOME
}

func (NSS) ID() string   { return api.StoreNSS }
func (NSS) Text() string { return "the browser's certificate store (NSS: Chromium, Firefox)" }

// Dir is the database folder for token: "" is Chromium's, else the
// Firefox profile folder of that name.
func (n NSS) Dir(token string) (dir string, create bool, err error) {
	home := n.Home
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return "", false, fmt.Errorf("finding the NSS database: %w", err)
		}
	}
	if token == "" {
		return filepath.Join(home, ".pki", "nssdb"), true, nil
	}
	if strings.ContainsAny(token, `/\`) || token == "." || token == ".." {
		return "", false, fmt.Errorf("%w: %q is not a Firefox profile folder name", ErrTokenNotFound, token)
	}
	for _, base := range []string{".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"} {
		d := filepath.Join(home, base, token)
		if _, err := os.Stat(filepath.Join(d, "cert9.db")); err == nil {
			return d, false, nil
		}
	}
	return "", false, fmt.Errorf("%w: no Firefox profile %q with an NSS database", ErrTokenNotFound, token)
}

// Put imports p12 with pk12util.
func (n NSS) Put(ctx context.Context, d *Delivery) (*Stored, error) {
	o, p12, pass := d.Opened, d.P12, d.Passphrase
	dir, create, err := n.Dir(d.Token)
	if err != nil {
		return nil, err
	}
	db := "sql:" + dir
	if _, err := os.Stat(filepath.Join(dir, "cert9.db")); errors.Is(err, os.ErrNotExist) && create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("%w: making the NSS database: %w", ErrStore, err)
		}
		if out, err := exec.CommandContext(ctx, "certutil", "-N", "-d", db, "--empty-password").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w: making the NSS database: certutil: %w: %s", ErrStore, err, bytes.TrimSpace(out))
		}
	}
	f, err := os.CreateTemp("", "cardwright-p12-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(p12)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	cmd := exec.CommandContext(ctx, "pk12util", "-i", f.Name(), "-d", db, "-w", "/dev/fd/3")
	cmd.ExtraFiles = []*os.File{r}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("%w: running pk12util: %w", ErrStore, err)
	}
	r.Close()
	w.Write(pass.Bytes()) // a passphrase is far below the pipe buffer
	w.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%w: pk12util: %w: %s", ErrStore, err, bytes.TrimSpace(out.Bytes()))
	}
	return &Stored{Token: dir, KeyID: softstore.KeyID(o.Cert)}, nil
}

// Check refuses a Firefox profile that is not there before the dialog
// opens.
func (n NSS) Check(_ context.Context, token string) error {
	_, _, err := n.Dir(token)
	return err
}
