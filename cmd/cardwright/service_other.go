//go:build !windows

package main

// service_other.go: 'cardwright service' on systems without the Service
// Control Manager.

import (
	"context"
	"errors"
	"fmt"
)

// errNoSCM is every service command's answer off Windows.
var errNoSCM = errors.New("services are a Windows feature; here the agent runs as the systemd unit cardwright.service " +
	"(system: systemctl enable --now cardwright.service; per user: systemctl --user enable --now cardwright.service) " +
	"or in the foreground with 'cardwright serve'")

func serviceRun(_ context.Context, env *cmdEnv, _ *serveFlags) int {
	fmt.Fprintf(env.stderr, "cardwright service run: %v\n", errNoSCM)
	return exitFailure
}

func serviceInstall(*cmdEnv, bool, string) error { return errNoSCM }
func serviceUninstall(*cmdEnv) error             { return errNoSCM }
func serviceSetStart(*cmdEnv, bool) error        { return errNoSCM }
