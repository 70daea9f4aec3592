package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent/api"
	"github.com/cardwright/cardwright/agent/api/client"
)

func tlsEnv(home string, out io.Writer) *cmdEnv {
	return &cmdEnv{stdin: strings.NewReader(""), stdout: out, stderr: out,
		getenv: func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		}}
}

// TestTLSInit: one certificate for the loopback names, chained to a CA
// whose private key is written nowhere, and a wss:// agent using it.
func TestTLSInit(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if code := runTLS(context.Background(), tlsEnv(t.TempDir(), &out), []string{"init", "--dir", dir}); code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if code := runTLS(context.Background(), tlsEnv(t.TempDir(), &out), []string{"init", "--dir", dir}); code != exitFailure {
		t.Fatal("init replaced existing files without --force")
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, tlsCAFile))
	b, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !ca.IsCA || len(ca.PermittedDNSDomains) != 1 {
		t.Fatalf("CA: %v %+v", err, ca)
	}
	// Exactly one private key on disk, and it is the leaf's, not the CA's.
	keys := 0
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		data, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		for rest := data; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if strings.Contains(blk.Type, "PRIVATE KEY") {
				keys++
				k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				if k.(*ecdsa.PrivateKey).PublicKey.Equal(ca.PublicKey) {
					t.Fatal("the CA private key is on disk")
				}
				if st, _ := os.Stat(filepath.Join(dir, f.Name())); st.Mode().Perm() != 0o600 {
					t.Fatalf("key file mode %v", st.Mode())
				}
			}
		}
	}
	if keys != 1 {
		t.Fatalf("%d private keys on disk", keys)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tlsCertFile), filepath.Join(dir, tlsKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "evil.example"}); err == nil {
		t.Error("the certificate is valid for evil.example")
	}

	// serve with it: wss:// with the CA as the only root.
	cfg := filepath.Join(t.TempDir(), "cardwright.cfg")
	os.WriteFile(cfg, []byte("[server]\norigin = https://portal.example\ntls_cert = "+filepath.Join(dir, tlsCertFile)+
		"\ntls_key = "+filepath.Join(dir, tlsKeyFile)+"\n"), 0o600)
	url, _, stop, logs := startServe(t, "--fake-runner", "--config", cfg, "--listen", "127.0.0.1:0", "--journal", t.TempDir())
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("url %s\n%s", url, logs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Origin: "https://portal.example", TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Run(ctx, &api.Job{Description: "x"}, nil, nil); err != nil || !res.OK {
		t.Fatalf("job over wss: %+v %v", res, err)
	}
	c.Close()
	// Without the CA the handshake fails.
	host := strings.TrimSuffix(strings.TrimPrefix(url, "wss://"), "/v1/ws")
	conn, err := tls.Dial("tcp", host, &tls.Config{ServerName: "localhost"})
	if err == nil {
		conn.Close()
		t.Fatal("the agent's certificate verified against the system roots")
	}
	stop()
}

func TestTLSInstallDryRun(t *testing.T) {
	home := t.TempDir()
	prof := filepath.Join(home, ".mozilla", "firefox", "abcd.default-release")
	os.MkdirAll(prof, 0o700)
	os.WriteFile(filepath.Join(prof, "cert9.db"), nil, 0o600)
	dir := t.TempDir()
	var out strings.Builder
	if code := runTLS(context.Background(), tlsEnv(home, io.Discard), []string{"init", "--dir", dir}); code != exitOK {
		t.Fatal("init failed")
	}
	if code := runTLS(context.Background(), tlsEnv(home, &out), []string{"install", "--dir", dir, "--dry-run"}); code != exitOK {
		t.Fatalf("install: %s", out.String())
	}
	got := out.String()
	for _, want := range []string{
		"certutil -d sql:" + filepath.Join(home, ".pki", "nssdb") + " -N --empty-password",
		"certutil -d sql:" + filepath.Join(home, ".pki", "nssdb") + " -A -t C,, -n cardwright local CA -i " + filepath.Join(dir, tlsCAFile),
		"certutil -d sql:" + prof + " -A -t C,, -n cardwright local CA",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if code := runTLS(context.Background(), tlsEnv(home, io.Discard), []string{"install", "--dir", t.TempDir()}); code != exitFailure {
		t.Fatal("install without init succeeded")
	}
}

// tls uninstall's steps are install's, undone; --system names the machine's
// folder and store.
func TestTLSUninstallDryRun(t *testing.T) {
	home := t.TempDir()
	prof := filepath.Join(home, ".mozilla", "firefox", "abcd.default-release")
	os.MkdirAll(prof, 0o700)
	os.WriteFile(filepath.Join(prof, "cert9.db"), nil, 0o600)
	dir := t.TempDir()
	if code := runTLS(context.Background(), tlsEnv(home, io.Discard), []string{"init", "--dir", dir}); code != exitOK {
		t.Fatal("init failed")
	}
	var out strings.Builder
	if code := runTLS(context.Background(), tlsEnv(home, &out), []string{"uninstall", "--dir", dir, "--dry-run"}); code != exitOK {
		t.Fatalf("uninstall: %s", out.String())
	}
	if want := "certutil -d sql:" + prof + " -D -n cardwright local CA"; !strings.Contains(out.String(), want) {
		t.Errorf("missing %q in\n%s", want, out.String())
	}
	out.Reset()
	code := runTLS(context.Background(), tlsEnv(home, &out), []string{"install", "--system", "--dir", dir, "--dry-run"})
	if os.Geteuid() == 0 {
		if code != exitOK || !strings.Contains(out.String(), "update-ca-certificates") || strings.Contains(out.String(), "certutil") {
			t.Errorf("install --system (root): exit %d\n%s", code, out.String())
		}
	} else if code != exitFailure {
		t.Errorf("install --system without root: exit %d", code)
	}
}
