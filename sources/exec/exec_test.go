package execsrc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/reaper"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

// decode decodes the kind's YAML as the loader does, defaults and checks included, and
// returns the configuration errors, one per line ("" when valid).
func decode(t *testing.T, text string, env map[string]string) (*Config, string) {
	t.Helper()
	cfg := &Config{}
	if err := plugintest.Decode(t, text, cfg, env); err != nil {
		return cfg, err.Error()
	}
	return cfg, ""
}

func build(t *testing.T, cfg *Config) sources.Source {
	t.Helper()
	testenv.LookPath(t, "sh", "install a POSIX shell")
	src, err := New(cfg, sources.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func sh(script string) *Config { return &Config{Command: []string{"sh", "-c", script}} }

func TestValue(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  *Config
		want float64
	}{
		{name: "echo", cfg: sh("echo 42"), want: 42},
		{name: "no shell", cfg: &Config{Command: []string{"echo", "7.5"}}, want: 7.5},
		{name: "last non-empty line counts", cfg: sh("echo connecting...; echo 'rows: 3'; echo ' 12 '; echo; echo '   '"), want: 12},
		{name: "no trailing newline", cfg: sh("printf 5"), want: 5},
		{name: "stderr does not matter on success", cfg: sh("echo warning >&2; echo 3"), want: 3},
		{name: "env added", cfg: &Config{Command: []string{"sh", "-c", "echo $((A + B))"},
			Env: map[string]configs.Secret{"A": configs.NewSecret("40"), "B": configs.NewSecret("2")}}, want: 42},
		{name: "env overrides the daemon's", cfg: &Config{Command: []string{"sh", "-c", "echo $HOME"},
			Env: map[string]configs.Secret{"HOME": configs.NewSecret("9")}}, want: 9},
		{name: "dir", cfg: &Config{Command: []string{"sh", "-c", "ls | wc -l"}, Dir: dir}, want: 0},
		{name: "large output keeps the last line", cfg: sh("i=0; while [ $i -lt 20000 ]; do echo 'padding padding padding'; i=$((i+1)); done; echo 99"), want: 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := build(t, tt.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := src.Value(ctx)
			if err != nil {
				t.Fatalf("Value: %v", err)
			}
			if got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValueErrors(t *testing.T) {
	const secret = "pg-pa55word"
	tests := []struct {
		name string
		cfg  *Config
		want []string
		not  []string
	}{
		{name: "non-numeric", cfg: sh("echo lots"), want: []string{`exec: sh: the last line of its output, "lots", is not a number`}},
		{name: "nothing printed", cfg: sh("true"), want: []string{"exec: sh: printed nothing on stdout"}},
		{name: "exit code and stderr", cfg: sh("echo 5; echo 'psql: connection refused' >&2; exit 3"),
			want: []string{"exec: sh: exit code 3; stderr: psql: connection refused"}},
		{name: "only the last 200 bytes of stderr", cfg: sh("printf 'HEAD%.0s' $(seq 100) >&2; printf 'x%.0s' $(seq 300) >&2; exit 1"),
			want: []string{"exit code 1; stderr: " + strings.Repeat("x", 200)}, not: []string{"HEAD", strings.Repeat("x", 201)}},
		{name: "multi-line stderr on one line", cfg: sh("echo one >&2; echo two >&2; exit 2"), want: []string{"stderr: one | two"}},
		{name: "signal", cfg: sh("kill -SEGV $$"), want: []string{"exec: sh: killed by signal SEGMENTATION FAULT"}},
		{name: "not found", cfg: &Config{Command: []string{"no-such-program-xyz"}},
			want: []string{`exec: exec: "no-such-program-xyz": executable file not found in $PATH`}},
		{name: "bad dir", cfg: &Config{Command: []string{"true"}, Dir: "/no/such/dir"}, want: []string{"exec: true: dir: stat /no/such/dir: no such file or directory"}},
		{name: "env secrets scrubbed, arguments not shown", cfg: &Config{
			Command: []string{"sh", "-c", `echo "auth failed for $PGPASSWORD" >&2; exit 1`, "--password=" + secret},
			Env:     map[string]configs.Secret{"PGPASSWORD": configs.NewSecret(secret)}},
			want: []string{"stderr: auth failed for <redacted>"}, not: []string{secret, "--password"}},
		{name: "secret in a non-numeric line scrubbed", cfg: &Config{
			Command: []string{"sh", "-c", `echo "token=$TOKEN"`},
			Env:     map[string]configs.Secret{"TOKEN": configs.NewSecret(secret)}},
			want: []string{`"token=<redacted>", is not a number`}, not: []string{secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := build(t, tt.cfg)
			_, err := plugintest.Value(t, src)
			plugintest.ErrorSays(t, err, tt.want, tt.not...)
		})
	}
}

// readPid waits for a script to write a pid to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTimeoutKillsGroup runs a command that outlives the query's timeout and has started
// a grandchild: both must be gone when Value returns, and soon.
func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "grandchild")
	src := build(t, sh("sleep 60 & echo $! > "+pidfile+"; echo $$ > "+pidfile+".sh; echo 'working' >&2; wait"))
	start := time.Now()
	_, err := sources.Read(context.Background(), src, time.Second)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a deadline", err)
	}
	for _, w := range []string{"timed out after 1s", "exec: sh: still running after", "killed it and its process group", "stderr: working"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if took > 3*time.Second {
		t.Errorf("Value returned %s after a 1s timeout", took)
	}
	testenv.WaitGone(t, 2*time.Second, readPid(t, pidfile), readPid(t, pidfile+".sh"))
}

// TestLeftoversKilled runs a command that prints its value and exits while a background
// child still holds its stdout: the value comes at once and the child is killed.
func TestLeftoversKilled(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "bg")
	src := build(t, sh("sleep 60 & echo $! > "+pidfile+"; echo 8"))
	start := time.Now()
	v, err := src.Value(context.Background())
	if err != nil || v != 8 {
		t.Fatalf("Value = %v, %v", v, err)
	}
	if took := time.Since(start); took > drainTimeout/2 {
		t.Errorf("Value took %s; it waited for the background child's pipe", took)
	}
	testenv.WaitGone(t, 2*time.Second, readPid(t, pidfile))
}

// TestEscapedProcessDoesNotStall runs a command whose child leaves the process group
// (setsid) and keeps stdout open, without the daemon's subreaper (as outside Linux): the
// value still comes, after the drain timeout, and the escaped process lives on.
func TestEscapedProcessDoesNotStall(t *testing.T) {
	testenv.LookPath(t, "setsid", "install util-linux")
	pidfile := filepath.Join(t.TempDir(), "escaped")
	// Wait for the pid file, so the command does not exit (and get its group killed)
	// before the child has left the group.
	src := build(t, sh("setsid sh -c 'echo $$ > "+pidfile+"; exec sleep 60' & while [ ! -s "+pidfile+" ]; do sleep 0.01; done; echo 4"))
	start := time.Now()
	v, err := src.Value(context.Background())
	took := time.Since(start)
	pid := readPid(t, pidfile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err != nil || v != 4 {
		t.Fatalf("Value = %v, %v", v, err)
	}
	if took < drainTimeout || took > drainTimeout+2*time.Second {
		t.Errorf("Value took %s, want about %s (the drain timeout)", took, drainTimeout)
	}
	if testenv.ProcessGone(pid) {
		t.Errorf("the process that left the group was killed; the test did not test an escape")
	}
}

func TestConfig(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret") // a secret file must be a regular file
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	tests := []struct {
		name string
		yaml string
		want []string // none: valid
	}{
		{name: "valid", yaml: "command: [sh, -c, 'echo 1']\ndir: /tmp\nenv: {A: b, P: {file: " + secret + "}}"},
		{name: "missing command", yaml: "dir: /tmp", want: []string{`test.yaml:1:1: q: missing required key "command"`}},
		{name: "empty command", yaml: "command: []", want: []string{`test.yaml:1:10: q.command: is empty`}},
		{name: "empty program", yaml: "command: ['', x]", want: []string{`q.command: the program name (the first element) is empty`}},
		{name: "command as a string", yaml: "command: echo 1", want: []string{`q.command: expected a list, got "echo 1"`}},
		{name: "bad env name", yaml: "command: [x]\nenv: {'A=B': c}", want: []string{`q.env: "A=B" is not an environment variable name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, all := decode(t, tt.yaml, nil)
			if len(tt.want) == 0 && all != "" {
				t.Fatalf("unexpected errors:\n%s", all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors:\n%s\ndo not contain %q", all, w)
				}
			}
		})
	}
}

// TestSetsidDescendantsReaped: under the daemon's child subreaper (reaper.Enable), what a
// command starts outside its process group (setsid) is killed when the command ends, on
// every tick, and leaves no zombie: one such process per tick used to pile up under init.
func TestSetsidDescendantsReaped(t *testing.T) {
	testenv.LookPath(t, "setsid", "install util-linux")
	stop, err := reaper.Enable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // last: the cleanups below still need the subreaper
	dir := t.TempDir()
	for tick := range 3 {
		pidfile := filepath.Join(dir, "escaped"+strconv.Itoa(tick))
		// Two levels: the setsid'd shell starts its own sleep, which is reparented to the
		// daemon only once the shell is killed.
		src := build(t, sh("setsid sh -c 'sleep 3600.91 & echo $! > "+pidfile+".inner; echo $$ > "+pidfile+"; wait' >/dev/null 2>&1 & while [ ! -s "+pidfile+".inner ]; do sleep 0.01; done; echo 4"))
		v, err := src.Value(context.Background())
		if err != nil || v != 4 {
			t.Fatalf("tick %d: Value = %v, %v", tick, v, err)
		}
		outer, inner := readPid(t, pidfile), readPid(t, pidfile+".inner")
		t.Cleanup(func() { syscall.Kill(outer, syscall.SIGKILL); syscall.Kill(inner, syscall.SIGKILL) })
		testenv.WaitReaped(t, 5*time.Second, outer, inner)
	}
}

// TestHugeOutputBounded: a command that prints 50 MB keeps only the end of its output in
// memory, and its last line is still the value.
func TestHugeOutputBounded(t *testing.T) {
	src := build(t, sh("head -c 50000000 /dev/zero | tr '\\0' x; echo; echo 5"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := src.Value(context.Background())
	runtime.ReadMemStats(&after)
	if err != nil || v != 5 {
		t.Fatalf("Value = %v, %v", v, err)
	}
	// TotalAlloc counts every allocation, freed or not: reading 50 MB whole would show.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("reading the output allocated %d MiB; it should keep only the last %d KiB", grew>>20, stdoutKeep>>10)
	}
}
