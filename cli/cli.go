// Package cli is autoscalerd's command line (SPEC §1): run, validate, simulate, status,
// version. main only calls Main.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Set at build time with -ldflags "-X github.com/autoscalerd/autoscalerd/cli.version=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes.
const (
	exitOK      = 0
	exitFatal   = 1
	exitInvalid = 2
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "autoscalerd:", err)
	return exitInvalid // cobra's own errors: bad flags or arguments
}

type app struct {
	v      *viper.Viper
	stdout io.Writer
	stderr io.Writer
	config string
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{v: viper.New(), stdout: stdout, stderr: stderr}
	a.v.SetEnvPrefix("AUTOSCALERD")
	a.v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	root := &cobra.Command{
		Use:           "autoscalerd",
		Short:         "Autoscaler for compose, swarm, Nomad and process groups, driven by queue depth",
		Long:          "autoscalerd reads queue depth where the work waits, evaluates YAML policies on a tick loop and sets\nreplica counts. With no configuration anywhere it runs a built-in demo.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		Version:       version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&a.config, "config", "c", "", "configuration file (default $AUTOSCALERD_CONFIG, ./autoscalerd.yaml, /etc/autoscalerd/autoscalerd.yaml)")
	// The daemon's settings are flags of the commands that use them (run, and validate,
	// which checks what run would do), not global flags of every command.
	daemonFlags := a.daemonFlags()
	run := a.runCmd()
	validate := a.validateCmd()
	for _, c := range []*cobra.Command{root, run, validate} {
		c.Flags().AddFlagSet(daemonFlags)
	}
	root.RunE = run.RunE
	root.AddCommand(run, validate, a.simulateCmd(), a.statusCmd(), a.historyCmd(), a.versionCmd(), a.sampleCmd(), a.demoWorkerCmd())
	return root
}

// daemonFlags defines a flag per daemon setting; each is also AUTOSCALERD_<KEY>.
func (a *app) daemonFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	fs.String("listen", "", "HTTP listen address (default "+configs.DefaultListen+")")
	fs.String("state-dir", "", "directory for persisted decision state (default "+configs.DefaultStateDir+")")
	fs.String("log-level", "", "debug, info, warn or error")
	fs.String("log-format", "", "text or json")
	fs.String("policy-dir", "", "directory of extra policy files (*.yaml)")
	fs.String("docker-host", "", "Docker engine address (default $DOCKER_HOST)")
	fs.String("api-token", "", "bearer token for the POST endpoints (prefer AUTOSCALERD_API_TOKEN)")
	fs.Int("scale-concurrency", 0, "how many scaling actions may run at once")
	for _, key := range configs.OverrideKeys {
		flag := strings.NewReplacer(".", "-", "_", "-").Replace(key)
		_ = a.v.BindPFlag(key, fs.Lookup(flag))
		_ = a.v.BindEnv(key, "AUTOSCALERD_"+strings.ToUpper(strings.NewReplacer(".", "_").Replace(key)))
	}
	return fs
}

// override gives flag and environment values precedence over the file.
func (a *app) override(key string) (string, bool) {
	if !a.v.IsSet(key) {
		return "", false
	}
	return a.v.GetString(key), true
}

// findConfig applies the discovery order; "" means none was found.
func (a *app) findConfig() (string, error) {
	if a.config != "" {
		return a.config, nil
	}
	if env := os.Getenv("AUTOSCALERD_CONFIG"); env != "" {
		return env, nil
	}
	for _, p := range []string{"autoscalerd.yaml", "/etc/autoscalerd/autoscalerd.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", nil
}

// load reads and compiles a configuration file. offline is for the commands that touch
// no source or target: secrets that cannot be had here are noted instead of failing.
func (a *app) load(path string, offline bool) (*configs.Config, []*policy.Policy, error) {
	return policy.Load(path, configs.Options{Override: a.override, OfflineSecrets: offline})
}

func displayPath(p string) string {
	if rel, err := filepath.Rel(".", p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
