package traytest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// fakeMenu is a dbusmenu in the shape fyne.io/systray exports.
type fakeMenu struct{ clicked chan int32 }

func (m fakeMenu) GetLayout(parent, depth int32, names []string) (uint32, layout, *dbus.Error) {
	entry := func(id int32, props map[string]dbus.Variant, children ...layout) layout {
		l := layout{ID: id, Props: props, Children: []dbus.Variant{}}
		for _, c := range children {
			l.Children = append(l.Children, dbus.MakeVariant(c))
		}
		return l
	}
	label := func(s string, enabled bool) map[string]dbus.Variant {
		return map[string]dbus.Variant{"label": dbus.MakeVariant(s), "enabled": dbus.MakeVariant(enabled)}
	}
	sub := label("Readers", true)
	sub["children-display"] = dbus.MakeVariant("submenu")
	return 7, entry(0, map[string]dbus.Variant{},
		entry(1, label("Status", false)),
		entry(2, sub, entry(3, label("ACS__ACR — _empty", false))),
		entry(4, map[string]dbus.Variant{"type": dbus.MakeVariant("separator")}),
		entry(5, map[string]dbus.Variant{"label": dbus.MakeVariant("Hidden"), "visible": dbus.MakeVariant(false)}),
		entry(6, label("Quit", true)),
	), nil
}

func (m fakeMenu) Event(id int32, event string, data dbus.Variant, ts uint32) *dbus.Error {
	if event == "clicked" {
		m.clicked <- id
	}
	return nil
}

// TestHostFakeItem: an item that registers with its object path (as
// Fyne's systray does) is found, its menu read with the dbusmenu defaults
// and labels as shown, and its entries clicked.
func TestHostFakeItem(t *testing.T) {
	h := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	app, err := dbus.Connect(h.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	menu := fakeMenu{clicked: make(chan int32, 1)}
	if err := app.Export(menu, "/StatusNotifierMenu", menuIface); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(app, "/StatusNotifierItem", prop.Map{itemIface: {
		"Menu":       {Value: dbus.ObjectPath("/StatusNotifierMenu")},
		"Title":      {Value: "fake"},
		"IconPixmap": {Value: []Pixmap{{2, 1, []byte{255, 1, 2, 3, 255, 4, 5, 6}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	err = app.Object(WatcherName, watcherPath).CallWithContext(ctx, watcherIface+".RegisterStatusNotifierItem", 0, "/StatusNotifierItem").Err
	if err != nil {
		t.Fatal(err)
	}

	it, err := h.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if it.Bus != app.Names()[0] || it.Path != "/StatusNotifierItem" {
		t.Errorf("item = %s %s, want %s /StatusNotifierItem", it.Bus, it.Path, app.Names()[0])
	}
	var registered []string
	if err := h.conn.Object(WatcherName, watcherPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, watcherIface, "RegisteredStatusNotifierItems").Store(&registered); err != nil {
		t.Fatal(err)
	}
	if want := []string{app.Names()[0] + "/StatusNotifierItem"}; !slices.Equal(registered, want) {
		t.Errorf("RegisteredStatusNotifierItems = %q, want %q", registered, want)
	}
	if title, err := it.Title(ctx); err != nil || title != "fake" {
		t.Errorf("Title = %q, %v", title, err)
	}
	px, err := it.IconPixmap(ctx)
	if err != nil || len(px) != 1 || px[0].Width != 2 || px[0].Height != 1 || len(px[0].ARGB) != 8 {
		t.Errorf("IconPixmap = %v, %v", px, err)
	}

	root, err := it.Layout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := root.Labels(), []string{"Status", "Readers", "-", "Hidden", "Quit"}; !slices.Equal(got, want) {
		t.Errorf("labels = %q, want %q\n%s", got, want, root)
	}
	status, _ := root.Find("Status")
	hidden, _ := root.Find("Hidden")
	readers, _ := root.Find("Readers")
	quit, _ := root.Find("Quit")
	if status.Enabled || !status.Visible || hidden.Visible || !hidden.Enabled || !readers.Submenu || !quit.Enabled {
		t.Errorf("enabled, visible or submenu wrong:\n%s", root)
	}
	if r, ok := root.Find("ACS_ACR — empty"); !ok || r.ID != 3 {
		t.Errorf("reader entry not found by its shown label:\n%s", root)
	}

	if err := it.Click(ctx, quit.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-menu.clicked:
		if id != quit.ID {
			t.Errorf("clicked %d, want %d", id, quit.ID)
		}
	case <-ctx.Done():
		t.Fatal("the click did not arrive")
	}
}

// TestHostWithoutWatcher: nobody owns the watcher's name until
// StartWatcher.
func TestHostWithoutWatcher(t *testing.T) {
	h := StartWithoutWatcher(t)
	has := func() bool {
		var b bool
		if err := h.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, WatcherName).Store(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if has() {
		t.Fatal("the watcher's name has an owner on a bus without one")
	}

	// An app that waits for a watcher, as fyne.io/systray does.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if h.WaitWatcherAwaited(done) == nil {
		t.Fatal("WaitWatcherAwaited returned before any app waited")
	}
	app, err := dbus.Connect(h.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, WatcherName)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitWatcherAwaited(ctx); err != nil {
		t.Fatal(err)
	}
	sig := make(chan *dbus.Signal, 10)
	app.Signal(sig)

	if err := h.StartWatcher(); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("the watcher's name has no owner after StartWatcher")
	}
	select {
	case s := <-sig:
		if s.Name != "org.freedesktop.DBus.NameOwnerChanged" || s.Body[0] != WatcherName {
			t.Errorf("signal %s %v", s.Name, s.Body)
		}
	case <-ctx.Done():
		t.Error("the waiting app was not told that the watcher started")
	}
	if err := h.StartWatcher(); err == nil {
		t.Error("a second StartWatcher succeeded")
	}
	if err := h.StopWatcher(); err != nil {
		t.Fatal(err)
	}
	if has() {
		t.Fatal("the watcher's name has an owner after StopWatcher")
	}
	if err := h.StartWatcher(); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("the watcher's name has no owner after StartWatcher again")
	}
}

func TestUnmnemonic(t *testing.T) {
	for in, want := range map[string]string{"": "", "_Quit": "Quit", "a__b": "a_b", "a___b": "a_b", "x_": "x", "____": "__", "Sites…": "Sites…"} {
		if got := unmnemonic(in); got != want {
			t.Errorf("unmnemonic(%q) = %q, want %q", in, got, want)
		}
	}
}
