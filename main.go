package main

import (
	"fmt"
	"os"

	"github.com/cairnkv/cairn/bench"
	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
)

// Version is Cairn's own version (/version reports the etcd API version
// it answers as).
const Version = server.Version

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "version":
		printVersion()
	case len(args) > 0 && args[0] == "bench":
		os.Exit(bench.Main(args[1:], os.Stdout))
	case len(args) > 0 && args[0] == "health":
		err = healthCmd(args[1:])
	case len(args) > 0 && args[0] == "snapshot":
		err = snapshotCmd(args[1:])
	case versionFlag(args):
		printVersion()
	default:
		err = run(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(1)
	}
}

func printVersion() {
	fmt.Printf("cairn %s (etcd v2 API %s)\n", Version, httpapi.EtcdServerVersion)
}

// versionFlag reports whether the serve flags ask for the version, as
// etcd's --version does (scripts check etcd that way): then nothing is
// started, whatever else is given.
func versionFlag(args []string) bool {
	for _, a := range args {
		switch a {
		case "--version", "-version", "--version=true", "-version=true":
			return true
		}
	}
	return false
}
