//go:build !nogui

package main

// gendoc_gui.go: in builds with the desktop app, gendoc --icon writes the
// tray's idle icon (drawn in code, gui/icons.go) as the application icon of
// the desktop entries, so the package ships the picture the tray shows.

import "github.com/cardwright/cardwright/gui"

func init() {
	gendocIcon = func() []byte { return gui.Icon(gui.IconIdle).Content() }
}
