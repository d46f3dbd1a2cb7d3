// Package execsrc is the `exec` query kind: the number a command prints. It runs the
// command on every evaluation, in its own process group, and kills that whole group when
// the query times out or the command exits, so nothing it started outlives the query.
package execsrc

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/reaper"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `exec` query kind.
type Config struct {
	// Command is the argv: the program and its arguments, run without a shell.
	Command []string `yaml:"command" required:"true"`
	// Dir is the working directory; the daemon's own when empty.
	Dir string `yaml:"dir"`
	// Env is added to the daemon's environment. Values are Secrets because env is how a
	// command gets its credentials (PGPASSWORD=...): they may come from files, and they
	// are scrubbed from the output quoted in errors.
	Env map[string]configs.Secret `yaml:"env"`
}

func init() {
	sources.Register("exec", sample, func() *Config { return &Config{} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	switch {
	case ch.Has("command") && len(c.Command) == 0:
		ch.Errorf("command", "is empty; give the program and its arguments, e.g. [sh, -c, 'echo 42']")
	case len(c.Command) > 0 && strings.TrimSpace(c.Command[0]) == "":
		ch.Errorf("command", "the program name (the first element) is empty")
	}
	names := make([]string, 0, len(c.Env))
	for name := range c.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			ch.Errorf("env", "%q is not an environment variable name", name)
		}
	}
}

const (
	// stdoutKeep bounds the stdout kept: only the last line matters, and a command that
	// streams megabytes must not grow the daemon.
	stdoutKeep = 64 << 10
	// stderrKeep bounds the stderr kept; errors quote the last stderrQuote bytes of it.
	stderrKeep  = 4 << 10
	stderrQuote = 200
	// drainTimeout bounds the wait for the output pipes to close after the command and
	// its process group are gone. Only a process that left the group (setsid) can hold
	// them open longer; its output is then cut off rather than stalling the query.
	drainTimeout = time.Second
	// minScrub is the shortest env value scrubbed from quoted output: shorter values
	// ("1", "on") are not credentials, and replacing them would garble every message.
	minScrub = 4
)

type source struct {
	argv    []string
	dir     string
	env     []string
	secrets []string // env values, longest first, scrubbed from quoted output
	log     *slog.Logger
}

// New returns the source for cfg. It does no I/O: the program is looked up when it runs.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	log := deps.Log()
	s := &source{argv: cfg.Command, dir: cfg.Dir, env: os.Environ(), log: log}
	names := make([]string, 0, len(cfg.Env))
	for name := range cfg.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := cfg.Env[name].Value()
		s.env = append(s.env, name+"="+v) // later entries win in os/exec
		if len(v) >= minScrub {
			s.secrets = append(s.secrets, v)
		}
	}
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	return s, nil
}

// Value runs the command and parses the last non-empty line of its stdout. Messages name
// the program but not its arguments, which may carry credentials.
func (s *source) Value(ctx context.Context) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	prog := s.argv[0]
	start := time.Now()
	stdout, stderr, err := s.run(ctx)
	took := time.Since(start).Round(time.Millisecond)
	errText := s.quote(lastBytes(stderr, stderrQuote))
	if err != nil {
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("exec: %s: still running after %s; killed it and its process group: %w", prog, took, ctx.Err())
		case errors.As(err, &ee):
			err = fmt.Errorf("exec: %s: %s", prog, exitStatus(ee))
		default:
			// Could not start. Go reports a missing dir as the program missing
			// ("fork/exec /usr/bin/x: no such file or directory"); say which it is.
			if s.dir != "" {
				if _, serr := os.Stat(s.dir); serr != nil {
					return 0, fmt.Errorf("exec: %s: dir: %w", prog, serr)
				}
			}
			return 0, fmt.Errorf("exec: %w", err) // "exec: \"x\": executable file not found in $PATH"
		}
		if errText != "" {
			return 0, fmt.Errorf("%w; stderr: %s", err, errText)
		}
		return 0, err
	}
	s.log.Debug("exec query ran", "program", prog, "took", took, "stderr", errText)
	line := lastLine(stdout)
	if line == "" {
		return 0, fmt.Errorf("exec: %s: printed nothing on stdout (want a number on its last line)", prog)
	}
	v, err := strconv.ParseFloat(line, 64)
	if err != nil {
		return 0, fmt.Errorf("exec: %s: the last line of its output, %q, is not a number", prog, s.quote([]byte(truncate(line, 60))))
	}
	return v, nil
}

// run starts the command in a new process group and returns what it printed.
//
// stdout and stderr are pipes we create (not io.Writers), so Wait returns as soon as the
// command exits instead of waiting for everything that inherited the pipes. Then the
// group is killed: a query runs every tick, and whatever the command left behind would
// pile up.
func (s *source) run(ctx context.Context) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	owner, err := reaper.Start(cmd)
	outW.Close() // the child has its copies; ours would keep the pipes open forever
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, nil, err
	}

	out, errs := &tail{keep: stdoutKeep}, &tail{keep: stderrKeep}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(out, outR) }()
	go func() { defer wg.Done(); _, _ = io.Copy(errs, errR) }()

	err = cmd.Wait()
	_ = killGroup(cmd.Process.Pid)
	// What left the group (setsid) and was handed to the daemon goes too; that also
	// closes the pipes it may hold.
	owner.Release()

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		s.log.Warn("exec query: a process that left the command's process group still holds its output open; not waiting for it", "program", s.argv[0])
	}
	outR.Close() // unblocks the copies if they are still reading
	errR.Close()
	<-drained
	return out.bytes(), errs.bytes(), err
}

// killGroup SIGKILLs every process in the group led by pid. A group that is already gone
// is not an error.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func exitStatus(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + strings.ToUpper(ws.Signal().String())
	}
	return "exit code " + strconv.Itoa(ee.ExitCode())
}

// quote prepares command output for an error message: on one line, env values scrubbed.
func (s *source) quote(b []byte) string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return sources.RedactString(strings.Join(lines, " | "), s.secrets...)
}

// lastLine is the last non-empty line, trimmed.
func lastLine(b []byte) string {
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

// lastBytes is the end of b, at most n bytes, not starting inside a UTF-8 character.
func lastBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	for len(b) > 0 && !utf8.RuneStart(b[0]) {
		b = b[1:]
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tail is an io.Writer that keeps the last keep bytes written to it.
type tail struct {
	keep int
	b    []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.keep { // trim in batches, not on every write
		t.b = append(t.b[:0], t.b[len(t.b)-t.keep:]...)
	}
	return len(p), nil
}

func (t *tail) bytes() []byte { return lastBytes(t.b, t.keep) }
