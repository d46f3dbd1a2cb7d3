package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/daemon"
	"github.com/autoscalerd/autoscalerd/demo"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/spf13/cobra"
)

func (a *app) runCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon until SIGTERM/SIGINT; SIGHUP reloads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC(os.Getenv)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			path, err := a.findConfig()
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			opts := daemon.Options{Stderr: a.stderr, Version: version}
			if path == "" {
				return a.runDemo(ctx, opts)
			}
			opts.Load = func() (*configs.Config, []*policy.Policy, error) { return a.load(path, false) }
			return a.exit(daemon.Run(ctx, opts))
		},
	}
	return cmd
}

// defaultGOGC is the garbage collector's target when GOGC is not set: the heap may grow by
// 75 % of what the last collection left live before the next, not the Go default's 100 %.
// Most of the daemon's heap is long-lived (every policy's state, history, chart and
// recent decisions), so the default's headroom is mostly memory held for nothing (at
// 10,000 policies with decisions changing every tick: peak RSS 380 MiB against 390 MiB,
// heap target 1.75× the live heap against 2×). Prometheus made the same choice (2.53).
// GOGC in the environment, as always, decides instead.
const defaultGOGC = 75

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

func (a *app) exit(err error) error {
	var ce *daemon.ConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return &exitError{code: exitInvalid, err: ce.Err}
	}
	return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd: %w", err)}
}

// runDemo runs the embedded demo configuration against a local demo queue.
func (a *app) runDemo(ctx context.Context, opts daemon.Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url, wait, err := demo.Serve(ctx)
	if err != nil {
		return &exitError{code: exitFatal, err: err}
	}
	defer func() { cancel(); wait() }() // the queue server stops when ctx ends
	self, err := os.Executable()
	if err != nil {
		return &exitError{code: exitFatal, err: err}
	}
	env := map[string]string{"AUTOSCALERD_DEMO_QUEUE": url, "AUTOSCALERD_DEMO_BIN": self}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	override := func(key string) (string, bool) {
		if v, ok := a.override(key); ok {
			return v, true
		}
		if key == "state_dir" {
			return filepath.Join(os.TempDir(), "autoscalerd-demo"), true
		}
		return "", false
	}
	opts.Load = func() (*configs.Config, []*policy.Policy, error) {
		return policy.Parse("(built-in demo)", demo.Config, configs.Options{LookupEnv: lookup, Override: override})
	}
	opts.Ready = func(addr string) {
		fmt.Fprintf(a.stderr, "\nNo configuration found (-c, $AUTOSCALERD_CONFIG, ./autoscalerd.yaml, /etc/autoscalerd/autoscalerd.yaml):\n"+
			"running the built-in demo. A demo queue's load rises and falls over %s; watch the workers follow it:\n"+
			"  status page  http://%s/\n  CLI          %s status --addr %s\n\n", demo.Period, addr, selfCommand(), addr)
	}
	return a.exit(daemon.Run(ctx, opts))
}

func (a *app) demoWorkerCmd() *cobra.Command {
	var queue string
	cmd := &cobra.Command{
		Use:    "demo-worker",
		Short:  "The built-in demo's worker (started by the demo's process group)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			replica := os.Getenv("AUTOSCALER_REPLICA")
			fmt.Fprintf(a.stdout, "demo worker %s started\n", replica)
			err := demo.Work(ctx, queue, func(s string) { fmt.Fprintf(a.stdout, "demo worker %s: %s\n", replica, s) })
			if err != nil {
				return &exitError{code: exitFatal, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&queue, "queue", "", "demo queue URL")
	return cmd
}

// selfCommand is how to run this binary again from the user's shell: `go run` builds into a
// temporary directory that is gone when it ends, so under it the answer is `go run` again.
func selfCommand() string {
	exe, err := os.Executable()
	switch {
	case err != nil:
		return "autoscalerd"
	case strings.Contains(exe, string(filepath.Separator)+"go-build"):
		return "go run ./cmd/autoscalerd"
	case filepath.Dir(exe) == "." || isOnPath(exe):
		return filepath.Base(exe)
	}
	return exe
}

// isOnPath reports whether exe is what its base name finds on $PATH.
func isOnPath(exe string) bool {
	found, err := exec.LookPath(filepath.Base(exe))
	return err == nil && found == exe
}
