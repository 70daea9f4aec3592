//go:build !windows

package main

import "syscall"

// detachedAttr puts the desktop app 'cardwright open' starts in a new
// session: no controlling terminal, its own process group.
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}
