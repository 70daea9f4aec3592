package gui

// icons.go: the tray icons (spec/gui.md, "Tray": "Icon showing the state
// (idle, working, needs attention, error)"). They are drawn here rather
// than shipped as files: a smart card in the state's colour and, except
// when idle, a badge whose shape says the same for those who do not see
// the colour — a triangle (working), "!" (attention), "×" (error).

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"

	"fyne.io/fyne/v2"
)

// iconSize is the side of the drawn icons in pixels. Tray hosts scale
// the pixmap down to their panel (16–48 px).
const iconSize = 64

// iconSamples is the supersampling per axis, for smooth edges.
const iconSamples = 4

var (
	colCard = map[IconState]color.NRGBA{
		IconIdle:      {0x60, 0x7d, 0x8b, 0xff}, // blue grey
		IconWorking:   {0x1e, 0x88, 0xe5, 0xff}, // blue
		IconAttention: {0xfb, 0x8c, 0x00, 0xff}, // amber
		IconError:     {0xe5, 0x39, 0x35, 0xff}, // red
	}
	colGlyph = map[IconState]color.NRGBA{
		IconWorking:   {0x15, 0x65, 0xc0, 0xff},
		IconAttention: {0xb2, 0x4a, 0x00, 0xff},
		IconError:     {0xc6, 0x28, 0x28, 0xff},
	}
	colChip   = color.NRGBA{0xf2, 0xc9, 0x4c, 0xff}
	colChipLn = color.NRGBA{0xa6, 0x80, 0x1a, 0xff}
	colBadge  = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	colRing   = color.NRGBA{0x26, 0x32, 0x38, 0xff}
)

// icons are drawn on first use, not at start: every command of the
// binary links this package, and drawing them took 35-50 ms of each
// start (GODEBUG=inittrace=1).
var icons = sync.OnceValue(func() map[IconState]fyne.Resource {
	return map[IconState]fyne.Resource{
		IconIdle:      drawIcon(IconIdle, "cardwright-idle.png"),
		IconWorking:   drawIcon(IconWorking, "cardwright-working.png"),
		IconAttention: drawIcon(IconAttention, "cardwright-attention.png"),
		IconError:     drawIcon(IconError, "cardwright-error.png"),
	}
})

// Icon returns the tray icon (a PNG) for the state; an unknown state gets
// the error icon.
func Icon(s IconState) fyne.Resource {
	if r, ok := icons()[s]; ok {
		return r
	}
	return icons()[IconError]
}

// shape reports whether a point (in icon pixels) is inside it.
type shape func(x, y float64) bool

type layer struct {
	in  shape
	col color.NRGBA
}

func drawIcon(s IconState, name string) fyne.Resource {
	img := image.NewNRGBA(image.Rect(0, 0, iconSize, iconSize))
	layers := iconLayers(s)
	const n = iconSamples
	for py := 0; py < iconSize; py++ {
		for px := 0; px < iconSize; px++ {
			var r, g, b, a float64
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					x := float64(px) + (float64(sx)+0.5)/n
					y := float64(py) + (float64(sy)+0.5)/n
					// The topmost layer containing the point paints it.
					for i := len(layers) - 1; i >= 0; i-- {
						if layers[i].in(x, y) {
							c := layers[i].col
							r += float64(c.R)
							g += float64(c.G)
							b += float64(c.B)
							a += 255
							break
						}
					}
				}
			}
			if a == 0 {
				continue
			}
			// Colour averaged over the covered samples, alpha over all.
			k := a / 255
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(math.Round(r / k)), G: uint8(math.Round(g / k)), B: uint8(math.Round(b / k)),
				A: uint8(math.Round(a / (n * n))),
			})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("encoding tray icon: " + err.Error()) // an in-memory NRGBA always encodes
	}
	return fyne.NewStaticResource(name, buf.Bytes())
}

// iconLayers are the shapes of an icon, bottom first.
func iconLayers(s IconState) []layer {
	ls := []layer{
		{roundRect(3, 13, 53, 49, 6), colCard[s]},                          // the card
		{roundRect(10, 22, 24, 34, 2.5), colChip},                          // its chip
		{union(hline(10, 24, 28, 0.8), vline(17, 22, 34, 0.8)), colChipLn}, // the chip's contacts
	}
	if s == IconIdle {
		return ls
	}
	const cx, cy = 47, 45
	ls = append(ls,
		layer{circle(cx, cy, 15), colRing},
		layer{circle(cx, cy, 13), colBadge},
	)
	g := colGlyph[s]
	switch s {
	case IconWorking:
		ls = append(ls, layer{triangle(cx-4.5, cy-7, cx-4.5, cy+7, cx+7.5, cy), g})
	case IconAttention:
		ls = append(ls,
			layer{roundRect(cx-2, cy-9, cx+2, cy+3, 1.5), g},
			layer{circle(cx, cy+7, 2.2), g})
	case IconError:
		ls = append(ls, layer{union(
			segment(cx-6, cy-6, cx+6, cy+6, 2.2),
			segment(cx+6, cy-6, cx-6, cy+6, 2.2)), g})
	}
	return ls
}

func roundRect(x0, y0, x1, y1, r float64) shape {
	return func(x, y float64) bool {
		if x < x0 || x > x1 || y < y0 || y > y1 {
			return false
		}
		dx := math.Max(math.Max(x0+r-x, x-(x1-r)), 0)
		dy := math.Max(math.Max(y0+r-y, y-(y1-r)), 0)
		return dx*dx+dy*dy <= r*r
	}
}

func circle(cx, cy, r float64) shape {
	return func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }
}

func hline(x0, x1, y, half float64) shape {
	return func(px, py float64) bool { return px >= x0 && px <= x1 && math.Abs(py-y) <= half }
}

func vline(x, y0, y1, half float64) shape {
	return func(px, py float64) bool { return py >= y0 && py <= y1 && math.Abs(px-x) <= half }
}

// segment is a line from (x0,y0) to (x1,y1), half its width either side.
func segment(x0, y0, x1, y1, half float64) shape {
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	return func(x, y float64) bool {
		t := math.Max(0, math.Min(1, ((x-x0)*dx+(y-y0)*dy)/l2))
		ex, ey := x0+t*dx-x, y0+t*dy-y
		return ex*ex+ey*ey <= half*half
	}
}

func triangle(ax, ay, bx, by, cx, cy float64) shape {
	side := func(x, y, x0, y0, x1, y1 float64) float64 { return (x1-x0)*(y-y0) - (y1-y0)*(x-x0) }
	return func(x, y float64) bool {
		d1, d2, d3 := side(x, y, ax, ay, bx, by), side(x, y, bx, by, cx, cy), side(x, y, cx, cy, ax, ay)
		neg := d1 < 0 || d2 < 0 || d3 < 0
		pos := d1 > 0 || d2 > 0 || d3 > 0
		return !(neg && pos)
	}
}

func union(ss ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range ss {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}
