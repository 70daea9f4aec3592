// Package dsc reads encoding descriptions (.dsc files and .dsz containers):
// it scans and parses the INI text keeping positions, order and comments
// (Parse), checks it against the keys of docs/dsc.md and builds a typed model
// (Check), turns a checked description plus one job's field values into the
// ordered steps a runner executes (NewPlan), and prints a description in
// canonical form (Format).
//
// The package is pure: it does no I/O of its own. Referenced card profiles
// and APDU scripts are read from an fs.FS the caller supplies (a directory,
// or a Bundle opened from a .dsz).
//
// docs/dsc.md describes the format as cardwright implements it and every
// decision taken where the public record is silent.
package dsc
