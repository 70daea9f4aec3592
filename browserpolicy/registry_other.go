//go:build !windows

package browserpolicy

import "errors"

var errNotWindows = errors.New("registry policies are Windows only")

func registryInstall(string, []string) (bool, error)            { return false, errNotWindows }
func registryUninstall(string) (bool, error)                    { return false, errNotWindows }
func registryInspect(string) (ours, others []string, err error) { return nil, nil, errNotWindows }

// Targets are this system's policy locations.
func Targets() []Target { return LinuxTargets("/") }
