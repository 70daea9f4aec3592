//go:build nogui

package main

// gui_off.go: a build without the desktop app (-tags nogui): no Fyne, no
// OpenGL or X11 libraries; 'cardwright desktop' says so.

const hasGUI = false
