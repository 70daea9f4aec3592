// Package tlstrust makes the per-install CA of `cardwright tls init`
// trusted, and untrusted again, where browsers look (docs/protocol.md,
// "wss://"): per user, the NSS databases of Chromium and Firefox on Linux
// and the user's ROOT store on Windows; per machine (an administrator's or
// the MSI's choice, never a Debian maintainer script: policy 9.1.2), the
// system store — /usr/local/share/ca-certificates with
// update-ca-certificates on Debian, LocalMachine\ROOT on Windows.
//
// Each change is a Step that can be printed (--dry-run) or done. The NSS and
// Debian stores are changed with their own tools (certutil,
// update-ca-certificates), as mkcert does; the Windows stores through
// crypt32 (store_windows.go).
package tlstrust

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Name is the CA's nickname in the NSS databases.
const Name = "cardwright local CA"

// SystemFile is where the per-machine copy goes on Debian.
const SystemFile = "/usr/local/share/ca-certificates/cardwright-local-ca.crt"

// Options say whose stores change.
type Options struct {
	// Home is the user's home directory (per-user stores); "" skips them.
	Home string
	// System changes the per-machine store instead of the user's.
	System bool
}

// Step is one change to a store.
type Step struct {
	What string   // for --dry-run and the log: a command line or a description
	argv []string // a command to run, or
	do   func(ctx context.Context) error
}

// Do makes the change.
func (s Step) Do(ctx context.Context, out io.Writer) error {
	if s.do != nil {
		return s.do(ctx)
	}
	if s.argv[0] == "mkdir" {
		return os.MkdirAll(s.argv[2], 0o700)
	}
	if _, err := exec.LookPath(s.argv[0]); err != nil {
		if s.argv[0] == "certutil" {
			return errors.New("certutil not found: install it (Debian: apt-get install libnss3-tools)")
		}
		return fmt.Errorf("%s not found: %w", s.argv[0], err)
	}
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s: %w", s.What, err)
	}
	return nil
}

func command(argv ...string) Step { return Step{What: strings.Join(argv, " "), argv: argv} }

// ReadCA reads the CA certificate file `tls init` wrote.
func ReadCA(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the CA (run cardwright tls init first): %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no certificate", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return c, nil
}

// Install returns the steps that make the CA in caFile trusted.
func Install(o Options, caFile string) ([]Step, error) {
	ca, err := ReadCA(caFile)
	if err != nil {
		return nil, err
	}
	steps, err := platformSteps(o, ca, caFile, true)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, errors.New("found no certificate store to install into")
	}
	return steps, nil
}

// Uninstall returns the steps that take the CA in caFile out of the
// stores Install put it in.
func Uninstall(o Options, caFile string) ([]Step, error) {
	ca, err := ReadCA(caFile)
	if err != nil {
		return nil, err
	}
	return platformSteps(o, ca, caFile, false)
}

// nssDatabases are the user's NSS databases: Chromium's (made when
// create, since Chromium reads it once it exists) and every Firefox
// profile's.
func nssDatabases(home string) (dbs []string, missing map[string]bool) {
	missing = map[string]bool{}
	if home == "" {
		return nil, missing
	}
	chromium := filepath.Join(home, ".pki", "nssdb")
	dbs = append(dbs, chromium)
	if _, err := os.Stat(chromium); err != nil {
		missing[chromium] = true
	}
	for _, pat := range []string{".mozilla/firefox/*", "snap/firefox/common/.mozilla/firefox/*"} {
		m, _ := filepath.Glob(filepath.Join(home, pat, "cert9.db"))
		for _, f := range m {
			dbs = append(dbs, filepath.Dir(f))
		}
	}
	return dbs, missing
}

// nssSteps adds the CA to (install) or deletes it from the NSS databases.
func nssSteps(home, caFile string, install bool) []Step {
	dbs, missing := nssDatabases(home)
	var steps []Step
	for _, db := range dbs {
		if missing[db] {
			if !install {
				continue
			}
			steps = append(steps, command("mkdir", "-p", db), command("certutil", "-d", "sql:"+db, "-N", "--empty-password"))
		}
		if install {
			steps = append(steps, command("certutil", "-d", "sql:"+db, "-A", "-t", "C,,", "-n", Name, "-i", caFile))
		} else {
			steps = append(steps, command("certutil", "-d", "sql:"+db, "-D", "-n", Name))
		}
	}
	return steps
}

// debianSteps copies the CA into (or removes it from) the system store.
func debianSteps(caFile string, install bool) ([]Step, error) {
	if _, err := os.Stat(filepath.Dir(SystemFile)); err != nil {
		return nil, fmt.Errorf("no system certificate store (%s): install ca-certificates", filepath.Dir(SystemFile))
	}
	if install {
		return []Step{command("cp", caFile, SystemFile), command("update-ca-certificates")}, nil
	}
	if _, err := os.Stat(SystemFile); err != nil {
		return nil, nil // not installed
	}
	return []Step{command("rm", "-f", SystemFile), command("update-ca-certificates", "--fresh")}, nil
}
