//go:build windows

package tlstrust

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// platformSteps: the ROOT store of the current user (Windows asks the user
// to confirm) or, with System, of the machine (an elevated process: the
// MSI's deferred custom action). Chromium and Edge read these stores;
// Firefox does too on Windows (security.enterprise_roots).
func platformSteps(o Options, ca *x509.Certificate, _ string, install bool) ([]Step, error) {
	loc, where := uint32(windows.CERT_SYSTEM_STORE_CURRENT_USER), `CurrentUser\ROOT`
	if o.System {
		loc, where = windows.CERT_SYSTEM_STORE_LOCAL_MACHINE, `LocalMachine\ROOT`
	}
	if install {
		return []Step{{What: "add " + Name + " to " + where, do: func(context.Context) error { return addRoot(loc, ca.Raw) }}}, nil
	}
	return []Step{{What: "remove " + Name + " from " + where, do: func(context.Context) error { return removeRoot(loc, ca.Raw) }}}, nil
}

func openRoot(loc uint32) (windows.Handle, error) {
	name, _ := windows.UTF16PtrFromString("ROOT")
	h, err := windows.CertOpenStore(windows.CERT_STORE_PROV_SYSTEM, 0, 0, loc, uintptr(unsafe.Pointer(name)))
	if err != nil {
		return 0, fmt.Errorf("opening the ROOT store: %w", err)
	}
	return h, nil
}

func addRoot(loc uint32, der []byte) error {
	h, err := openRoot(loc)
	if err != nil {
		return err
	}
	defer windows.CertCloseStore(h, 0)
	ctx, err := windows.CertCreateCertificateContext(windows.X509_ASN_ENCODING|windows.PKCS_7_ASN_ENCODING, &der[0], uint32(len(der)))
	if err != nil {
		return fmt.Errorf("reading the CA: %w", err)
	}
	defer windows.CertFreeCertificateContext(ctx)
	if err := windows.CertAddCertificateContextToStore(h, ctx, windows.CERT_STORE_ADD_REPLACE_EXISTING, nil); err != nil {
		return fmt.Errorf("adding the CA to the ROOT store: %w", err)
	}
	return nil
}

func removeRoot(loc uint32, der []byte) error {
	h, err := openRoot(loc)
	if err != nil {
		return err
	}
	defer windows.CertCloseStore(h, 0)
	want, err := windows.CertCreateCertificateContext(windows.X509_ASN_ENCODING|windows.PKCS_7_ASN_ENCODING, &der[0], uint32(len(der)))
	if err != nil {
		return fmt.Errorf("reading the CA: %w", err)
	}
	defer windows.CertFreeCertificateContext(want)
	found, err := windows.CertFindCertificateInStore(h, windows.X509_ASN_ENCODING|windows.PKCS_7_ASN_ENCODING, 0,
		windows.CERT_FIND_EXISTING, unsafe.Pointer(want), nil)
	if err != nil {
		if errors.Is(err, windows.Errno(windows.CRYPT_E_NOT_FOUND)) {
			return nil // not there
		}
		return fmt.Errorf("finding the CA in the ROOT store: %w", err)
	}
	// CertDeleteCertificateFromStore frees found.
	if err := windows.CertDeleteCertificateFromStore(found); err != nil {
		return fmt.Errorf("removing the CA from the ROOT store: %w", err)
	}
	return nil
}
