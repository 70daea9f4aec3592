// Package traytest plays the desktop's tray host for tests: a private
// D-Bus session bus (its own dbus-daemon) where it owns
// org.kde.StatusNotifierWatcher, records the StatusNotifierItems that
// register, and reads and clicks their menus over com.canonical.dbusmenu
// — what a panel does with Fyne's tray on Linux (spec/gui.md, "Tray";
// research/gui.md, "Linux tray"). Only _test.go files import it.
//
// Facts it relies on (fyne.io/systray, systray_unix.go and
// systray_menu_unix.go): the item exports /StatusNotifierItem
// (org.kde.StatusNotifierItem: Menu, IconPixmap, Title, … properties) and
// its menu at the path in the Menu property, /StatusNotifierMenu
// (com.canonical.dbusmenu: GetLayout, Event, …); it registers by calling
// RegisterStatusNotifierItem with its object path, not a bus name, so the
// item is the caller's connection at that path; with no watcher it logs,
// keeps running, and registers when the name gets an owner.
package traytest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// The StatusNotifierItem protocol's names (freedesktop.org
// StatusNotifierItem specification, KDE's names as Fyne uses them).
const (
	WatcherName  = "org.kde.StatusNotifierWatcher"
	watcherPath  = dbus.ObjectPath("/StatusNotifierWatcher")
	watcherIface = "org.kde.StatusNotifierWatcher"
	itemIface    = "org.kde.StatusNotifierItem"
	itemPath     = dbus.ObjectPath("/StatusNotifierItem") // when a bus name registers
	menuIface    = "com.canonical.dbusmenu"
)

// Host is a private session bus, with or without a tray host on it.
type Host struct {
	addr string
	conn *dbus.Conn // the host's own connection: the watcher, and the caller of items

	mu      sync.Mutex
	items   []Item
	changed chan struct{} // closed and replaced at each registration
	props   *prop.Properties
	awaited chan struct{} // closed when an app waits for a watcher (WaitWatcherAwaited)
}

// Start starts a private session bus with a tray host (a
// StatusNotifierWatcher) on it. The bus stops when the test ends. It fails
// the test when dbus-daemon is missing.
func Start(t testing.TB) *Host {
	t.Helper()
	h := StartWithoutWatcher(t)
	if err := h.StartWatcher(); err != nil {
		t.Fatalf("traytest: %v", err)
	}
	return h
}

// StartWithoutWatcher starts a private session bus on which nobody owns
// org.kde.StatusNotifierWatcher, as under GNOME without the AppIndicator
// extension or on a bare X server. StartWatcher adds one later.
func StartWithoutWatcher(t testing.TB) *Host {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatalf("traytest: dbus-daemon not found: install the Debian package dbus (scripts/install-deps)")
	}
	// A short directory of our own: a unix socket path has at most 107
	// bytes, and t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "traytest")
	if err != nil {
		t.Fatalf("traytest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Our own configuration: the system's session.conf lists service
	// directories, and a watcher installed there (xfce4-panel, KDE) would
	// be activated by the first call to its name.
	conf := filepath.Join(dir, "session.conf")
	err = os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600)
	if err != nil {
		t.Fatalf("traytest: %v", err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("traytest: %v", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("traytest: starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	h := &Host{changed: make(chan struct{}), awaited: make(chan struct{})}
	select {
	case h.addr = <-addr:
	case <-time.After(30 * time.Second):
	}
	if h.addr == "" {
		t.Fatalf("traytest: dbus-daemon printed no address: %s", stderr.String())
	}
	h.conn, err = dbus.Connect(h.addr)
	if err != nil {
		t.Fatalf("traytest: connecting to the private bus: %v", err)
	}
	t.Cleanup(func() { h.conn.Close() })
	mon, err := h.monitor()
	if err != nil {
		t.Fatalf("traytest: %v", err)
	}
	t.Cleanup(func() {
		mon.Eavesdrop(nil) // else Close closes the channel under a send (godbus v5.1.0)
		mon.Close()
	})
	return h
}

// monitor watches the bus for an app asking to be told when the watcher's
// name gets an owner: fyne.io/systray, finding no watcher, adds a match
// rule for NameOwnerChanged with arg0 the watcher's name, and registers
// when that signal comes. A watcher that starts before the rule is in
// place goes unnoticed, so WaitWatcherAwaited waits for the bus's reply to
// that AddMatch.
func (h *Host) monitor() (*dbus.Conn, error) {
	mon, err := dbus.Connect(h.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting the monitor: %w", err)
	}
	rules := []string{
		"type='method_call',interface='org.freedesktop.DBus',member='AddMatch'",
		"type='method_return',sender='org.freedesktop.DBus'",
	}
	if err := mon.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, rules, uint32(0)).Err; err != nil {
		mon.Close()
		return nil, fmt.Errorf("becoming a monitor: %w", err)
	}
	msgs := make(chan *dbus.Message, 1000)
	mon.Eavesdrop(msgs) // monitors never answer; godbus must not try
	go func() {
		type call struct {
			from   string
			serial uint32
		}
		pending := map[call]bool{}
		for {
			var m *dbus.Message
			select {
			case m = <-msgs:
			case <-mon.Context().Done():
				return
			}
			if m == nil { // the connection closed
				return
			}
			from, _ := m.Headers[dbus.FieldSender].Value().(string)
			switch m.Type {
			case dbus.TypeMethodCall:
				if len(m.Body) != 1 {
					break
				}
				if rule, _ := m.Body[0].(string); strings.Contains(rule, "NameOwnerChanged") && strings.Contains(rule, WatcherName) {
					pending[call{from, m.Serial()}] = true
				}
			case dbus.TypeMethodReply:
				to, _ := m.Headers[dbus.FieldDestination].Value().(string)
				serial, _ := m.Headers[dbus.FieldReplySerial].Value().(uint32)
				if pending[call{to, serial}] {
					h.mu.Lock()
					select {
					case <-h.awaited:
					default:
						close(h.awaited)
					}
					h.mu.Unlock()
				}
			}
		}
	}()
	return mon, nil
}

// WaitWatcherAwaited waits until an app on the bus waits for a watcher to
// appear (its match rule for the watcher's name is in place), as when a
// panel starts after the app. fyne.io/systray subscribes to the signal
// only after the rule is in place, so a watcher started at once may still
// go unseen; a test then stops and starts it again, as a restarting panel
// does.
func (h *Host) WaitWatcherAwaited(ctx context.Context) error {
	select {
	case <-h.awaited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for an app to wait for %s: %w", WatcherName, ctx.Err())
	}
}

// Address is the bus address, for DBUS_SESSION_BUS_ADDRESS.
func (h *Host) Address() string { return h.addr }

// Env is DBUS_SESSION_BUS_ADDRESS=Address, for a child's environment.
func (h *Host) Env() string { return "DBUS_SESSION_BUS_ADDRESS=" + h.addr }

// StartWatcher makes the host the bus's StatusNotifierWatcher: it exports
// the watcher's methods and properties (once) and then takes its name, as
// a panel does when it starts.
func (h *Host) StartWatcher() error {
	h.mu.Lock()
	exported := h.props != nil
	h.mu.Unlock()
	if !exported {
		if err := h.exportWatcher(); err != nil {
			return err
		}
	}
	reply, err := h.conn.RequestName(WatcherName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("requesting %s: %w", WatcherName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("requesting %s: not the owner (reply %d)", WatcherName, reply)
	}
	return nil
}

// StopWatcher gives the watcher's name up, as a panel does when it ends.
// The items registered so far stay recorded.
func (h *Host) StopWatcher() error {
	reply, err := h.conn.ReleaseName(WatcherName)
	if err != nil {
		return fmt.Errorf("releasing %s: %w", WatcherName, err)
	}
	if reply != dbus.ReleaseNameReplyReleased {
		return fmt.Errorf("releasing %s: not the owner (reply %d)", WatcherName, reply)
	}
	return nil
}

func (h *Host) exportWatcher() error {
	if err := h.conn.Export(watcher{h}, watcherPath, watcherIface); err != nil {
		return fmt.Errorf("exporting the watcher: %w", err)
	}
	props, err := prop.Export(h.conn, watcherPath, prop.Map{watcherIface: {
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
		"IsStatusNotifierHostRegistered": {Value: true, Emit: prop.EmitTrue},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		return fmt.Errorf("exporting the watcher's properties: %w", err)
	}
	node := &introspect.Node{
		Name: string(watcherPath),
		Interfaces: []introspect.Interface{
			introspect.IntrospectData,
			prop.IntrospectData,
			{
				Name: watcherIface,
				Methods: []introspect.Method{
					{Name: "RegisterStatusNotifierItem", Args: []introspect.Arg{{Name: "service", Type: "s", Direction: "in"}}},
					{Name: "RegisterStatusNotifierHost", Args: []introspect.Arg{{Name: "service", Type: "s", Direction: "in"}}},
				},
				Signals: []introspect.Signal{
					{Name: "StatusNotifierItemRegistered", Args: []introspect.Arg{{Name: "service", Type: "s"}}},
					{Name: "StatusNotifierHostRegistered"},
				},
				Properties: props.Introspection(watcherIface),
			},
		},
	}
	if err := h.conn.Export(introspect.NewIntrospectable(node), watcherPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("exporting the watcher's introspection: %w", err)
	}
	h.mu.Lock()
	h.props = props
	h.mu.Unlock()
	return nil
}

// watcher is the exported org.kde.StatusNotifierWatcher object.
type watcher struct{ h *Host }

// RegisterStatusNotifierItem records an item. service is a bus name (the
// item at /StatusNotifierItem) or, as Fyne's systray sends it, an object
// path on the caller's connection.
func (w watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	it := Item{Bus: service, Path: itemPath, conn: w.h.conn}
	if strings.HasPrefix(service, "/") {
		it = Item{Bus: string(sender), Path: dbus.ObjectPath(service), conn: w.h.conn}
	}
	h := w.h
	h.mu.Lock()
	h.items = append(h.items, it)
	names := make([]string, len(h.items))
	for i, x := range h.items {
		names[i] = x.Bus + string(x.Path)
	}
	close(h.changed)
	h.changed = make(chan struct{})
	props := h.props
	h.mu.Unlock()
	if props != nil {
		props.SetMust(watcherIface, "RegisteredStatusNotifierItems", names)
	}
	h.conn.Emit(watcherPath, watcherIface+".StatusNotifierItemRegistered", it.Bus+string(it.Path))
	return nil
}

// RegisterStatusNotifierHost is accepted and ignored: the host is us.
func (w watcher) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// Items are the items registered so far, in order.
func (h *Host) Items() []Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Item(nil), h.items...)
}

// WaitItem returns the first item that registered, waiting for one until
// ctx ends.
func (h *Host) WaitItem(ctx context.Context) (Item, error) {
	for {
		h.mu.Lock()
		if len(h.items) > 0 {
			it := h.items[0]
			h.mu.Unlock()
			return it, nil
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Item{}, fmt.Errorf("waiting for a StatusNotifierItem to register: %w", ctx.Err())
		}
	}
}

// Item is a registered StatusNotifierItem.
type Item struct {
	Bus  string          // the item's connection (a unique name such as ":1.3") or its bus name
	Path dbus.ObjectPath // the item's object path
	conn *dbus.Conn
}

func (it Item) obj() dbus.BusObject { return it.conn.Object(it.Bus, it.Path) }

func (it Item) prop(ctx context.Context, name string) (dbus.Variant, error) {
	var v dbus.Variant
	err := it.obj().CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, itemIface, name).Store(&v)
	if err != nil {
		return v, fmt.Errorf("reading the item's %s: %w", name, err)
	}
	return v, nil
}

// MenuPath is the item's Menu property: the object path of its dbusmenu.
func (it Item) MenuPath(ctx context.Context) (dbus.ObjectPath, error) {
	v, err := it.prop(ctx, "Menu")
	if err != nil {
		return "", err
	}
	p, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		return "", fmt.Errorf("the item's Menu is a %s, not an object path", v.Signature())
	}
	return p, nil
}

// Title is the item's Title property.
func (it Item) Title(ctx context.Context) (string, error) {
	v, err := it.prop(ctx, "Title")
	if err != nil {
		return "", err
	}
	s, _ := v.Value().(string)
	return s, nil
}

// Pixmap is one image of the item's IconPixmap: Width×Height pixels, ARGB32
// in network byte order.
type Pixmap struct {
	Width, Height int32
	ARGB          []byte
}

// IconPixmap is the item's IconPixmap property.
func (it Item) IconPixmap(ctx context.Context) ([]Pixmap, error) {
	v, err := it.prop(ctx, "IconPixmap")
	if err != nil {
		return nil, err
	}
	var px []Pixmap
	if err := dbus.Store([]any{v.Value()}, &px); err != nil {
		return nil, fmt.Errorf("decoding the item's IconPixmap (%s): %w", v.Signature(), err)
	}
	return px, nil
}

// Node is a menu entry as the tray host sees it (com.canonical.dbusmenu
// GetLayout, its properties with the specification's defaults applied).
type Node struct {
	ID        int32
	Label     string // as shown: "__" is "_", a single "_" (the access key mark) is dropped
	Enabled   bool   // "enabled", default true
	Visible   bool   // "visible", default true
	Separator bool   // "type" is "separator"
	Submenu   bool   // "children-display" is "submenu"
	Children  []Node
}

// Find returns the first entry, depth first, whose label is label.
func (n Node) Find(label string) (Node, bool) {
	for _, c := range n.Children {
		if c.Label == label && !c.Separator {
			return c, true
		}
		if f, ok := c.Find(label); ok {
			return f, true
		}
	}
	return Node{}, false
}

// Labels are the labels of the entry's children, separators as "-".
func (n Node) Labels() []string {
	out := make([]string, len(n.Children))
	for i, c := range n.Children {
		if c.Separator {
			out[i] = "-"
		} else {
			out[i] = c.Label
		}
	}
	return out
}

// String draws the tree, one entry a line, for test failures.
func (n Node) String() string {
	var b strings.Builder
	var walk func(Node, string)
	walk = func(n Node, indent string) {
		for _, c := range n.Children {
			switch {
			case c.Separator:
				fmt.Fprintf(&b, "%s----\n", indent)
			default:
				flags := ""
				if !c.Enabled {
					flags += " (disabled)"
				}
				if !c.Visible {
					flags += " (hidden)"
				}
				fmt.Fprintf(&b, "%s%d %q%s\n", indent, c.ID, c.Label, flags)
			}
			walk(c, indent+"  ")
		}
	}
	walk(n, "")
	return b.String()
}

// layout is GetLayout's (ia{sv}av) entry.
type layout struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

// Layout reads the whole menu (GetLayout of the root, id 0, all depths, all
// properties).
func (it Item) Layout(ctx context.Context) (Node, error) {
	mp, err := it.MenuPath(ctx)
	if err != nil {
		return Node{}, err
	}
	var rev uint32
	var root layout
	err = it.conn.Object(it.Bus, mp).CallWithContext(ctx, menuIface+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		return Node{}, fmt.Errorf("reading the menu layout at %s: %w", mp, err)
	}
	return toNode(root)
}

// WaitLayout reads the menu until ok accepts it (the app builds and
// rebuilds it after registering) or ctx ends; then it returns the last
// layout read with the error.
func (it Item) WaitLayout(ctx context.Context, ok func(Node) bool) (Node, error) {
	for {
		n, err := it.Layout(ctx)
		if err == nil && ok(n) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("the menu did not become as expected: %w; last layout:\n%s", ctx.Err(), n)
			}
			return n, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Click sends the "clicked" event to a menu entry, as a tray host does when
// the user chooses it.
func (it Item) Click(ctx context.Context, id int32) error {
	mp, err := it.MenuPath(ctx)
	if err != nil {
		return err
	}
	err = it.conn.Object(it.Bus, mp).CallWithContext(ctx, menuIface+".Event", 0,
		id, "clicked", dbus.MakeVariant(int32(0)), uint32(time.Now().Unix())).Err
	if err != nil {
		return fmt.Errorf("clicking menu entry %d: %w", id, err)
	}
	return nil
}

// ClickLabel reads the menu and clicks the entry shown as label. An app
// that rebuilds its menu gives its entries new ids (Fyne does once more
// after the item registers), so a click may meet an id that just went
// away: the app logs it and nothing happens. Tests that must see the click
// land call this again until its effect shows.
func (it Item) ClickLabel(ctx context.Context, label string) error {
	root, err := it.Layout(ctx)
	if err != nil {
		return err
	}
	n, ok := root.Find(label)
	if !ok {
		return fmt.Errorf("no menu entry %q in\n%s", label, root)
	}
	return it.Click(ctx, n.ID)
}

func toNode(l layout) (Node, error) {
	n := Node{ID: l.ID, Enabled: true, Visible: true}
	if v, ok := l.Props["label"]; ok {
		s, _ := v.Value().(string)
		n.Label = unmnemonic(s)
	}
	if v, ok := l.Props["enabled"]; ok {
		n.Enabled, _ = v.Value().(bool)
	}
	if v, ok := l.Props["visible"]; ok {
		n.Visible, _ = v.Value().(bool)
	}
	if v, ok := l.Props["type"]; ok {
		s, _ := v.Value().(string)
		n.Separator = s == "separator"
	}
	if v, ok := l.Props["children-display"]; ok {
		s, _ := v.Value().(string)
		n.Submenu = s == "submenu"
	}
	for _, cv := range l.Children {
		var c layout
		if err := dbus.Store([]any{cv.Value()}, &c); err != nil {
			return n, fmt.Errorf("decoding menu entry under %d (%s): %w", l.ID, cv.Signature(), err)
		}
		cn, err := toNode(c)
		if err != nil {
			return n, err
		}
		n.Children = append(n.Children, cn)
	}
	return n, nil
}

// unmnemonic is a dbusmenu label as shown: "__" shows "_", any other "_"
// marks the access key and is not shown.
func unmnemonic(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '_' {
			b.WriteByte('_')
			i++
		}
	}
	return b.String()
}
