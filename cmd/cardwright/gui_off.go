//go:build nogui

package main

// gui_off.go: a build without the desktop app (-tags nogui): no Fyne, no
// OpenGL or X11 libraries; 'cardwright desktop' says so.

import "errors"

const hasGUI = false

// showInitWindow is never reached: runInitGUI checks hasGUI first.
func showInitWindow(initWindow) error { return errNoGUI }

var errNoGUI = errors.New("this build has no desktop app")
