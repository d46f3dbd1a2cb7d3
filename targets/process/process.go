// Package process scales a group of supervised child processes of the daemon: the target
// for plain VMs, where a worker is a program started N times.
//
// Each replica is one child in its own process group, numbered by AUTOSCALER_REPLICA
// (the lowest free index, from 1). Crashed children are restarted with capped exponential
// backoff according to the restart policy; scale-down stops the highest indexes with the
// stop signal, then SIGKILL after stop_timeout, or, with a drain block, drains idle
// replicas first and stops busy ones only once they are done. Children die with the
// daemon.
package process

import (
	_ "embed"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/warm"
	"go.yaml.in/yaml/v3"
)

//go:embed sample.conf
var sample string

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// ReplicaEnv names the variable that tells each child its replica index.
const ReplicaEnv = "AUTOSCALER_REPLICA"

// Config is the `process` target kind.
type Config struct {
	// Command is the argv of each replica; it runs without a shell.
	Command Argv `yaml:"command" required:"true"`
	// Dir is the working directory; the daemon's own when empty.
	Dir string `yaml:"dir"`
	// Env is added to the daemon's environment. Values are secrets (a string or
	// { file: ... }) because tokens are what workers usually get through their environment.
	Env map[string]configs.Secret `yaml:"env"`
	// StopSignal is sent to a replica's process group to stop it (SIGTERM, TERM, SIGINT...).
	StopSignal string `yaml:"stop_signal"`
	// StopTimeout is how long a replica may take to stop before it is killed.
	StopTimeout configs.Duration `yaml:"stop_timeout"`
	// Restart says which exits are restarted: always, on-failure or never.
	Restart string `yaml:"restart"`
	// Drain makes scale-in wait for busy replicas (see drain.go).
	Drain *drain.Config `yaml:"drain"`
	// Warm keeps a pool of SIGSTOPped standby replicas that scale-ups take first (warm.go).
	Warm *warm.Config `yaml:"warm"`
}

// Argv is a program and its arguments, run without a shell.
type Argv []string

// UnmarshalConfig implements configs.Unmarshaler. A plain string is refused with a hint,
// because splitting it would need shell rules, and quoting mistakes would be silent.
func (a *Argv) UnmarshalConfig(d *configs.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		if v, ok := d.Scalar(n, path); ok {
			d.Errorf(n, path, "%q is one string, but command is a list of arguments run without a shell (write [%s])", v, strings.Join(strings.Fields(v), ", "))
		}
		return
	}
	if n.Kind != yaml.SequenceNode {
		var list []string
		d.Decode(n, path, &list) // reports what it got instead of a list
		return
	}
	list := []string{} // non-nil: an empty list is reported by CheckConfig
	d.Decode(n, path, &list)
	*a = list
}

func defaultConfig() *Config {
	return &Config{StopSignal: "SIGTERM", StopTimeout: configs.Duration(10 * time.Second), Restart: RestartAlways}
}

func init() {
	targets.Register("process", sample, defaultConfig, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	// A nil Command was not a list, which Argv already reported.
	if c.Command != nil && (len(c.Command) == 0 || c.Command[0] == "") {
		ch.Errorf("command", "must name a program (an argv list such as [/usr/local/bin/worker, --queue, default])")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) { // sorted: errors in a stable order
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			ch.Errorf("env", "%q is not a valid environment variable name", k)
		case k == ReplicaEnv:
			ch.Errorf("env", "%s is set by autoscalerd for each replica and cannot be overridden", ReplicaEnv)
		}
	}
	if _, err := parseSignal(c.StopSignal); err != nil {
		ch.Errorf("stop_signal", "%v", err)
	}
	if _, err := parseRestart(c.Restart); err != nil {
		ch.Errorf("restart", "%v", err)
	}
	if c.Drain != nil {
		c.Drain.Check(ch, "drain", drain.Process)
	}
	if c.Warm != nil {
		c.Warm.Check(ch, "warm", warm.Process, c.Drain != nil, c.Drain != nil && !c.Drain.Resumable())
	}
}

// TargetKey implements configs.Keyed: the same command line in the same directory is the
// same set of workers, and two policies numbering them from 1 would collide.
func (c *Config) TargetKey() string {
	key := fmt.Sprintf("%q", c.Command)
	if c.Dir != "" {
		key += " in " + filepath.Clean(c.Dir)
	}
	return key
}

func parseRestart(s string) (string, error) {
	switch s {
	case RestartAlways, RestartOnFailure, RestartNever:
		return s, nil
	}
	return "", fmt.Errorf("%q is not a restart policy (use always, on-failure or never)", s)
}

// New returns the target for cfg. It starts nothing: children and the supervisor's
// goroutines appear on the first Scale.
func New(cfg *Config, deps targets.Deps) (targets.Target, error) {
	return newTarget(cfg, deps, defaultTiming)
}

// environ is the replicas' extra environment, sorted by name.
func (c *Config) environ() []string {
	env := make([]string, 0, len(c.Env))
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		env = append(env, k+"="+c.Env[k].Value())
	}
	return env
}

// CheckHost implements targets.HostChecker: the command must be an executable (found on
// $PATH when it has no slash, as when the replicas start) and dir a directory.
func (c *Config) CheckHost() []targets.HostProblem {
	var out []targets.HostProblem
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err != nil {
			out = append(out, targets.HostProblem{Field: "dir", Msg: fmt.Sprintf("%s does not exist here", c.Dir)})
		} else if !fi.IsDir() {
			out = append(out, targets.HostProblem{Field: "dir", Msg: fmt.Sprintf("%s is not a directory", c.Dir)})
		}
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		return out
	}
	name := c.Command[0]
	if !strings.Contains(name, "/") {
		if _, err := exec.LookPath(name); err != nil {
			out = append(out, targets.HostProblem{Field: "command", Msg: fmt.Sprintf("%s is not on $PATH here (%s)", name, os.Getenv("PATH"))})
		}
		return out
	}
	path := name
	if !filepath.IsAbs(path) && c.Dir != "" {
		path = filepath.Join(c.Dir, path)
	}
	switch fi, err := os.Stat(path); {
	case err != nil:
		out = append(out, targets.HostProblem{Field: "command", Msg: fmt.Sprintf("%s does not exist here", path)})
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		out = append(out, targets.HostProblem{Field: "command", Msg: fmt.Sprintf("%s is not an executable file", path)})
	}
	return out
}
