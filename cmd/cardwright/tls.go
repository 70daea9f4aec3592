package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cardwright/cardwright/tlstrust"
)

// Files written by `cardwright tls init`.
const (
	tlsCAFile   = "ca.pem"            // the per-install CA certificate (no key anywhere)
	tlsCertFile = "localhost.pem"     // the agent's certificate followed by the CA's
	tlsKeyFile  = "localhost-key.pem" // the agent's private key, mode 0600
	tlsCAName   = tlstrust.Name
)

var (
	tlsInitCmd = &command{
		name:    "init",
		args:    "[--dir DIR] [--force]",
		summary: "make the per-install CA and its localhost certificate (the CA's key is not kept)",
	}
	tlsInstallCmd = &command{
		name:    "install",
		args:    "[--system] [--dir DIR] [--dry-run]",
		summary: "trust the per-install CA: the user's stores (NSS databases of Chromium and Firefox; Windows: the user's ROOT store) or, with --system, the machine's",
		detail: `With --system (as root or administrator) the CA goes into the machine's store
(Debian: /usr/local/share/ca-certificates and update-ca-certificates;
Windows: LocalMachine\ROOT) and the certificate files live in the system folder
(/etc/cardwright/tls, %ProgramData%\cardwright\tls), made by 'tls init' there when
missing. The Windows MSI runs it when installed with TLS=1; the Debian package
never does (policy: an administrator's step).`,
	}
	tlsUninstallCmd = &command{
		name:    "uninstall",
		args:    "[--system] [--dir DIR] [--dry-run]",
		summary: "take the per-install CA out of the stores 'tls install' put it in",
	}
	tlsCmd = &command{
		name:    "tls",
		summary: "make the per-install localhost certificate (init), trust its CA (install) or stop trusting it (uninstall)",
		subs:    []*command{tlsInitCmd, tlsInstallCmd, tlsUninstallCmd},
	}
)

func init() {
	tlsInitCmd.run, tlsInstallCmd.run, tlsUninstallCmd.run = runTLSInit, runTLSInstall, runTLSUninstall
	register(tlsCmd)
}

// runTLS runs `cardwright tls args…`.
func runTLS(ctx context.Context, env *cmdEnv, args []string) int {
	return tlsCmd.dispatch(ctx, env, args)
}

func runTLSInit(_ context.Context, env *cmdEnv, args []string) int {
	fs := tlsInitCmd.flags(env)
	dir := fs.String("dir", defaultTLSDir(env), "`directory` of the certificate files")
	force := fs.Bool("force", false, "replace existing files")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if err := tlsInit(env, *dir, *force, time.Now()); err != nil {
		fmt.Fprintf(env.stderr, "cardwright tls init: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func runTLSInstall(ctx context.Context, env *cmdEnv, args []string) int {
	return runTLSTrust(ctx, env, tlsInstallCmd, args, true)
}

func runTLSUninstall(ctx context.Context, env *cmdEnv, args []string) int {
	return runTLSTrust(ctx, env, tlsUninstallCmd, args, false)
}

func runTLSTrust(ctx context.Context, env *cmdEnv, c *command, args []string, install bool) int {
	fs := c.flags(env)
	dir := fs.String("dir", "", "`directory` of the certificate files (default: the user's, or the system's with --system)")
	system := fs.Bool("system", false, "the machine's store instead of the user's (root or administrator)")
	dry := fs.Bool("dry-run", false, "print the steps instead of doing them")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "cardwright tls %s: %v\n", c.name, err)
		return exitFailure
	}
	if *dir == "" {
		*dir = defaultTLSDir(env)
		if *system {
			*dir = systemTLSDir(env)
		}
	}
	if install && *system && !*dry {
		// The per-machine install makes its certificate files when there are
		// none (the MSI's TLS=1 runs only this command).
		if _, err := os.Stat(filepath.Join(*dir, tlsCAFile)); errors.Is(err, os.ErrNotExist) {
			if err := tlsInit(env, *dir, false, time.Now()); err != nil {
				return fail(err)
			}
		}
	}
	if err := tlsTrust(ctx, env, *dir, *system, install, *dry); err != nil {
		return fail(err)
	}
	return exitOK
}

// systemTLSDir is the machine's folder of the certificate files.
func systemTLSDir(env *cmdEnv) string {
	if runtime.GOOS == "windows" {
		if pd := env.getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "cardwright", "tls")
		}
	}
	return filepath.Join("/etc", "cardwright", "tls")
}

func defaultTLSDir(env *cmdEnv) string {
	if d := env.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "cardwright", "tls")
	}
	if h := env.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "cardwright", "tls")
	}
	return filepath.Join("/etc", "cardwright", "tls")
}

// tlsInit makes a CA, has it sign one certificate for localhost, 127.0.0.1
// and ::1, and forgets the CA's private key: nobody, the agent included,
// can issue another certificate under this CA. The CA is name-constrained
// to those names as well, so a trust-store entry for it vouches for
// nothing else even in principle.
func tlsInit(env *cmdEnv, dir string, force bool, now time.Time) error {
	if !force {
		for _, f := range []string{tlsCAFile, tlsCertFile, tlsKeyFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s exists (use --force to replace it; trusted copies of the old CA must then be removed)", filepath.Join(dir, f))
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("making the CA key: %w", err)
	}
	host, _ := os.Hostname()
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	ca := &x509.Certificate{
		SerialNumber:                randomSerial(),
		Subject:                     pkix.Name{CommonName: tlsCAName + " " + host + " " + now.UTC().Format("2006-01-02"), Organization: []string{"cardwright"}},
		NotBefore:                   now.Add(-time.Hour),
		NotAfter:                    now.AddDate(10, 0, 0),
		IsCA:                        true,
		BasicConstraintsValid:       true,
		MaxPathLenZero:              true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost"},
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("making the CA certificate: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("making the agent key: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 397), // browsers cap server certificates near 398 days
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	// The CA key is not written anywhere; drop the last reference (zeroing
	// D would not reach crypto/ecdsa's internal copy of the key).
	caKey = nil
	if err != nil {
		return fmt.Errorf("issuing the localhost certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return fmt.Errorf("encoding the agent key: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), caPEM...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	clear(keyDER)
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{tlsKeyFile, keyPEM, 0o600}, {tlsCertFile, chain, 0o644}, {tlsCAFile, caPEM, 0o644}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	clear(keyPEM)
	fmt.Fprintf(env.stdout, "wrote %s (CA, its key discarded), %s and %s\n", filepath.Join(dir, tlsCAFile), filepath.Join(dir, tlsCertFile), filepath.Join(dir, tlsKeyFile))
	fmt.Fprintf(env.stdout, "add to cardwright.cfg:\n[server]\ntls_cert = %s\ntls_key = %s\n", filepath.Join(dir, tlsCertFile), filepath.Join(dir, tlsKeyFile))
	fmt.Fprintf(env.stdout, "then trust the CA: cardwright tls install --dir %s\n", dir)
	return nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// tlsTrust installs (or uninstalls) the CA of dir in the stores tlstrust
// chooses, or prints the steps (dry).
func tlsTrust(ctx context.Context, env *cmdEnv, dir string, system, install, dry bool) error {
	o := tlstrust.Options{Home: env.getenv("HOME"), System: system}
	ca := filepath.Join(dir, tlsCAFile)
	plan := tlstrust.Uninstall
	if install {
		plan = tlstrust.Install
	}
	steps, err := plan(o, ca)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if dry {
			fmt.Fprintln(env.stdout, s.What)
			continue
		}
		if err := s.Do(ctx, env.stdout); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, "done:", s.What)
	}
	return nil
}
