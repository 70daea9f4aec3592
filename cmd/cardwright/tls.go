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
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Files written by `cardwright tls init`.
const (
	tlsCAFile   = "ca.pem"            // the per-install CA certificate (no key anywhere)
	tlsCertFile = "localhost.pem"     // the agent's certificate followed by the CA's
	tlsKeyFile  = "localhost-key.pem" // the agent's private key, mode 0600
	tlsCAName   = "cardwright local CA"
)

var (
	tlsInitCmd = &command{
		name:    "init",
		args:    "[--dir DIR] [--force]",
		summary: "make the per-install CA and its localhost certificate (the CA's key is not kept)",
	}
	tlsInstallCmd = &command{
		name:    "install",
		args:    "[--dir DIR] [--dry-run]",
		summary: "trust the per-install CA: the user's NSS databases (Chromium, Firefox) and, as root on Debian, the system store",
	}
	tlsCmd = &command{
		name:    "tls",
		summary: "make the per-install localhost certificate (init) and trust its CA (install)",
		subs:    []*command{tlsInitCmd, tlsInstallCmd},
	}
)

func init() {
	tlsInitCmd.run, tlsInstallCmd.run = runTLSInit, runTLSInstall
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
	fs := tlsInstallCmd.flags(env)
	dir := fs.String("dir", defaultTLSDir(env), "`directory` of the certificate files")
	dry := fs.Bool("dry-run", false, "print the commands instead of running them")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	if err := tlsInstall(ctx, env, *dir, *dry); err != nil {
		fmt.Fprintf(env.stderr, "cardwright tls install: %v\n", err)
		return exitFailure
	}
	return exitOK
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

// tlsInstall adds the CA to the user's NSS databases (Chromium's
// ~/.pki/nssdb and every Firefox profile) with certutil, and, when run as
// root on Debian, to the system store (update-ca-certificates).
func tlsInstall(ctx context.Context, env *cmdEnv, dir string, dry bool) error {
	ca := filepath.Join(dir, tlsCAFile)
	pemData, err := os.ReadFile(ca)
	if err != nil {
		return fmt.Errorf("reading the CA (run cardwright tls init first): %w", err)
	}
	if b, _ := pem.Decode(pemData); b == nil || b.Type != "CERTIFICATE" {
		return fmt.Errorf("%s holds no certificate", ca)
	}
	var cmds [][]string
	home := env.getenv("HOME")
	var dbs []string
	if home != "" {
		dbs = append(dbs, filepath.Join(home, ".pki", "nssdb"))
		for _, pat := range []string{".mozilla/firefox/*", "snap/firefox/common/.mozilla/firefox/*"} {
			m, _ := filepath.Glob(filepath.Join(home, pat, "cert9.db"))
			for _, f := range m {
				dbs = append(dbs, filepath.Dir(f))
			}
		}
	}
	for _, db := range dbs {
		if _, err := os.Stat(db); err != nil {
			if !strings.HasSuffix(db, filepath.Join(".pki", "nssdb")) {
				continue
			}
			cmds = append(cmds, []string{"mkdir", "-p", db}, []string{"certutil", "-d", "sql:" + db, "-N", "--empty-password"})
		}
		cmds = append(cmds, []string{"certutil", "-d", "sql:" + db, "-A", "-t", "C,,", "-n", tlsCAName, "-i", ca})
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/usr/local/share/ca-certificates"); err == nil {
			cmds = append(cmds, []string{"cp", ca, "/usr/local/share/ca-certificates/cardwright-local-ca.crt"}, []string{"update-ca-certificates"})
		}
	}
	if len(cmds) == 0 {
		return errors.New("found no certificate store to install into")
	}
	for _, c := range cmds {
		if dry {
			fmt.Fprintln(env.stdout, strings.Join(c, " "))
			continue
		}
		if c[0] == "certutil" {
			if _, err := exec.LookPath("certutil"); err != nil {
				return errors.New("certutil not found: install it (Debian: apt-get install libnss3-tools)")
			}
		}
		if c[0] == "mkdir" {
			if err := os.MkdirAll(c[2], 0o700); err != nil {
				return err
			}
			continue
		}
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("running %s: %w", strings.Join(c, " "), err)
		}
		fmt.Fprintln(env.stdout, "done:", strings.Join(c, " "))
	}
	return nil
}
