// Command autoscalerd is a standalone autoscaler daemon for everything that is not
// Kubernetes. See the README, and `autoscalerd --help`.
package main

import (
	"os"
	_ "time/tzdata" // schedules' time zones work in a scratch image too

	"github.com/autoscalerd/autoscalerd/cli"
	_ "github.com/autoscalerd/autoscalerd/sources/all"
	_ "github.com/autoscalerd/autoscalerd/targets/all"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
