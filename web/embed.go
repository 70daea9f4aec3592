// Package web holds the browser side of cardwright: cardwright.js, an ES
// module portals import with no build step, and the demo portal page that
// `cardwright serve --demo-portal` serves on its own loopback origin.
package web

import "embed"

// Files are the static files: cardwright.js, demo.html, demo.js.
//
//go:embed *.js *.html
var Files embed.FS
