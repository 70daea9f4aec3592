//go:build windows

package main

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// detachedAttr starts the desktop app 'cardwright open' starts without a
// console of its own, in a new process group (Ctrl+C in the console that
// ran 'open' does not reach it).
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS}
}
