package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time: -ldflags "-X main.version=1.2.3".
var version = "dev"

var versionCmd = &command{
	name:    "version",
	summary: "print the version",
	detail:  "Prints the version, the VCS revision it was built from, the platform and the Go version.",
}

func init() {
	versionCmd.run = runVersion
	register(versionCmd)
}

func runVersion(_ context.Context, env *cmdEnv, args []string) int {
	fs := versionCmd.flags(env)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(env.stdout, "cardwright %s%s %s/%s %s\n", version, rev, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
