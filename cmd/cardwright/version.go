package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func init() {
	register(&command{
		name:    "version",
		summary: "print the version",
		run: func(_ context.Context, env *cmdEnv, _ []string) int {
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
		},
	})
}
