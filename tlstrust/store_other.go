//go:build !windows

package tlstrust

import (
	"crypto/x509"
	"errors"
	"os"
)

// platformSteps: per user the NSS databases (and, as root on Debian, the
// system store too, as `tls install` always did); per machine the system
// store alone.
func platformSteps(o Options, _ *x509.Certificate, caFile string, install bool) ([]Step, error) {
	if o.System {
		if os.Geteuid() != 0 {
			return nil, errors.New("the system store needs root")
		}
		return debianSteps(caFile, install)
	}
	steps := nssSteps(o.Home, caFile, install)
	if os.Geteuid() == 0 {
		if sys, err := debianSteps(caFile, install); err == nil {
			steps = append(steps, sys...)
		}
	}
	return steps, nil
}
