package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds autoscalerd once per test run: these tests drive the real executable.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autoscalerd-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "autoscalerd")
		args := []string{"build", "-o", binPath}
		if os.Getenv("AUTOSCALERD_E2E_RACE") != "" {
			args = append(args, "-race") // the daemon itself under the race detector
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is a running autoscalerd under test.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

func startDaemon(t *testing.T, cfgPath string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), done: make(chan error, 1)}
	args := append([]string{"run", "-c", cfgPath, "--listen", d.addr, "--state-dir", t.TempDir()}, extra...)
	d.cmd = exec.Command(binary(t), args...)
	stderr, _ := d.cmd.StderrPipe()
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(15 * time.Second):
				d.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logText())
		}
	})
	d.waitFor("ready", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return d
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *daemon) waitFor(what string, timeout time.Duration, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

type policyJSON struct {
	Name         string              `json:"name"`
	Current      int                 `json:"current"`
	Ready        *int                `json:"ready"`
	Desired      *int                `json:"desired"`
	Min          int                 `json:"min"`
	Max          int                 `json:"max"`
	Paused       bool                `json:"paused"`
	LastError    string              `json:"last_error"`
	Queries      map[string]*float64 `json:"queries"`
	LastDecision *struct {
		From, To int
		Action   string
		Reason   string
	} `json:"last_decision"`
	Decisions []struct {
		From, To int
		Action   string
		Reason   string
	} `json:"decisions"`
}

func (d *daemon) policy(name string) policyJSON {
	d.t.Helper()
	var p policyJSON
	d.getJSON("/v1/policies/"+name, &p)
	return p
}

func (d *daemon) getJSON(path string, v any) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
}

func (d *daemon) metric(name string, labels ...string) (float64, bool) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// liveChildren counts the daemon's child processes running `cmdline`.
func liveChildren(ppid int, cmdline string) int { // ppid < 0: of any parent
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the ")" : state ppid ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 2 || (ppid >= 0 && f[1] != strconv.Itoa(ppid)) || f[0] == "Z" {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(strings.ReplaceAll(string(cl), "\x00", " "), cmdline) {
			n++
		}
	}
	return n
}

const e2eConfig = `
policies:
  - name: e2e
    target:
      process:
        command: ["sleep", "%s"]
        stop_timeout: 2s
    min: 1
    max: %d
    interval: 200ms
    queries:
      depth:
        http:
          url: %s
          value: depth
    replicas: ceil(depth / 10)
    cooldown: { up: 500ms, down: 3s }
`

// TestEndToEnd drives the built binary with an http query served by the test: replicas
// follow the served value up, and down only after the down cooldown; the API and the
// metrics agree; a broken file on SIGHUP keeps the daemon running on the old config.
func TestEndToEnd(t *testing.T) {
	var depth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"depth": %d}`, depth.Load())
	}))
	defer srv.Close()
	sleepArg := "3600.5" // unique, to find our children
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	write := func(max int) {
		if err := os.WriteFile(cfg, fmt.Appendf(nil, e2eConfig, sleepArg, max, srv.URL), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(5)
	d := startDaemon(t, cfg)
	pid := d.cmd.Process.Pid

	d.waitFor("1 replica at start", 10*time.Second, func() bool { return d.policy("e2e").Current == 1 && liveChildren(pid, sleepArg) == 1 })

	depth.Store(35)
	d.waitFor("scale up to 4", 10*time.Second, func() bool { return d.policy("e2e").Current == 4 })
	upAt := time.Now()
	d.waitFor("4 live children", 5*time.Second, func() bool { return liveChildren(pid, sleepArg) == 4 })

	depth.Store(0)
	d.waitFor("scale down to 1", 15*time.Second, func() bool { return d.policy("e2e").Current == 1 })
	if held := time.Since(upAt); held < 3*time.Second {
		t.Errorf("scaled down %s after the scale-up; cooldown.down is 3s", held)
	}
	d.waitFor("1 live child", 5*time.Second, func() bool { return liveChildren(pid, sleepArg) == 1 })

	p := d.policy("e2e")
	var ups, downs int
	for _, dec := range p.Decisions {
		switch {
		case dec.Action == "up" && dec.From == 1 && dec.To == 4:
			ups++
			if !strings.Contains(dec.Reason, "depth=35 → ceil(35 / 10)=4 → clamp[1,5]=4") {
				t.Errorf("scale-up reason %q", dec.Reason)
			}
		case dec.Action == "down" && dec.From == 4 && dec.To == 1:
			downs++
			if !strings.Contains(dec.Reason, "cooldown.down ok") {
				t.Errorf("scale-down reason %q", dec.Reason)
			}
		}
	}
	if ups != 1 || downs != 1 {
		t.Errorf("decisions: %d scale-ups 1→4 and %d scale-downs 4→1, want one each", ups, downs)
	}
	if v, _ := d.metric("autoscalerd_policy_replicas", `kind="current"`, `policy="e2e"`); v != 1 {
		t.Errorf("metric current = %v, want 1", v)
	}
	// The process group starts empty: 0→1 at start, then 1→4.
	if v, _ := d.metric("autoscalerd_scale_actions_total", `direction="up"`); v != 2 {
		t.Errorf("metric scale-ups = %v, want 2 (0→1, 1→4)", v)
	}
	if v, _ := d.metric("autoscalerd_scale_actions_total", `direction="down"`); v != 1 {
		t.Errorf("metric scale-downs = %v, want 1", v)
	}
	if v, _ := d.metric("autoscalerd_query_value", `query="depth"`); v != 0 {
		t.Errorf("metric query value = %v, want 0", v)
	}

	// A broken file on SIGHUP: the daemon keeps running the old configuration.
	if err := os.WriteFile(cfg, []byte("policies:\n  - name: e2e\n    mx: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("failed reload metric", 10*time.Second, func() bool {
		v, ok := d.metric("autoscalerd_config_last_reload_successful")
		return ok && v == 0
	})
	if !strings.Contains(d.logText(), `unknown key \"mx\" (did you mean \"max\"?)`) {
		t.Errorf("the log does not explain the failed reload")
	}
	depth.Store(25)
	d.waitFor("scale up on the old config after a failed reload", 10*time.Second, func() bool { return d.policy("e2e").Current == 3 })

	// A good file again: reloaded, max now 2; the running children are kept.
	write(2)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("successful reload", 10*time.Second, func() bool {
		v, _ := d.metric("autoscalerd_config_last_reload_successful")
		return v == 1
	})
	d.waitFor("max 2 in force", 10*time.Second, func() bool { p := d.policy("e2e"); return p.Max == 2 })

	// SIGTERM: clean exit, no children left.
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop within 20s of SIGTERM")
	}
	time.Sleep(200 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", "sleep "+sleepArg).Output(); len(out) > 0 {
		t.Errorf("children left after the daemon stopped: %s", out)
	}
}

// TestPauseResume pauses a policy over the API: it keeps deciding but never scales.
func TestPauseResume(t *testing.T) {
	var depth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"depth": %d}`, depth.Load())
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, e2eConfig, "3600.25", 5, srv.URL), 0o644)
	d := startDaemon(t, cfg)
	post := func(path string) int {
		resp, err := http.Post("http://"+d.addr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Ready means the target answered once; the first tick may still be deciding 0→1.
	d.waitFor("the first replica", 10*time.Second, func() bool { return d.policy("e2e").Current == 1 })
	if code := post("/v1/policies/e2e/pause"); code != 200 {
		t.Fatalf("pause: %d", code)
	}
	if code := post("/v1/policies/nope/pause"); code != 404 {
		t.Errorf("pause of an unknown policy: %d, want 404", code)
	}
	depth.Store(50)
	d.waitFor("a paused decision", 10*time.Second, func() bool {
		p := d.policy("e2e")
		return p.Paused && p.LastDecision != nil && strings.Contains(p.LastDecision.Reason, "paused (would scale 1→5)")
	})
	time.Sleep(time.Second)
	if p := d.policy("e2e"); p.Current != 1 {
		t.Fatalf("a paused policy scaled to %d", p.Current)
	}
	post("/v1/policies/e2e/resume")
	d.waitFor("scale up after resume", 10*time.Second, func() bool { return d.policy("e2e").Current == 5 })

	// The status page shows the card, the last reason and a chart with the query's line.
	resp, err := http.Get("http://" + d.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<h2>e2e", "depth=50 → ceil(50 / 10)=5", "<svg", ">depth</text>", ">replicas</text>", ">desired</text>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

// TestExitCodes checks the CLI contract of SPEC §1.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, fmt.Appendf(nil, e2eConfig, "1", 3, "http://127.0.0.1:1/x"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 1.2.3.4:99\npolicies:\n  - name: x\n    intervall: 3\n"), 0o644)
	code := func(args ...string) (int, string) {
		cmd := exec.Command(binary(t), args...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	state := filepath.Join(dir, "state") // validate checks that state_dir is writable
	if c, out := code("validate", "-c", good, "--state-dir", state); c != 0 || !strings.Contains(out, "valid (1 policy)") {
		t.Errorf("validate good: %d %s", c, out)
	}
	c, out := code("validate", "-c", bad)
	if c != 2 {
		t.Errorf("validate bad: exit %d, want 2", c)
	}
	for _, want := range []string{
		bad + `:4:5: policies[0]: unknown key "intervall" (did you mean "interval"?)`,
		bad + `:3:5: policies[0]: missing required key "target"`,
		`listen: "1.2.3.4:99" is not a loopback address: set api_token`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if c, _ := code("run", "-c", bad); c != 2 {
		t.Errorf("run with an invalid config: exit %d, want 2", c)
	}
	if c, _ := code("status", "--addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))); c != 1 {
		t.Errorf("status of nothing: exit %d, want 1", c)
	}
	if c, out := code("version"); c != 0 || !regexp.MustCompile(`autoscalerd \S+ \(commit \S+, go1`).MatchString(out) {
		t.Errorf("version: %d %q", c, out)
	}
	if c, out := code("sample"); c != 0 || !strings.Contains(out, "compose, nomad, process, swarm") {
		t.Errorf("sample: %d %q", c, out)
	}
	if c, out := code("sample", "hatchet"); c != 0 || !strings.Contains(out, "hatchet:") {
		t.Errorf("sample hatchet: %d %q", c, out)
	}
	if c, _ := code("sample", "kubernetes"); c != 2 {
		t.Errorf("sample of an unknown kind: exit %d, want 2", c)
	}
	if c, _ := code("simulate", "-c", good, "--policy", "nope", "--trace", good); c != 2 {
		t.Errorf("simulate of an unknown policy: exit %d, want 2", c)
	}
	// Precedence flag > env > file: an invalid level from the environment is reported, and
	// a valid flag wins over it.
	cmd := exec.Command(binary(t), "validate", "-c", good)
	cmd.Env = append(os.Environ(), "AUTOSCALERD_LOG_LEVEL=loud")
	out2, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out2), `log.level: "loud" is not a log level`) {
		t.Errorf("env override not applied: %s", out2)
	}
	cmd = exec.Command(binary(t), "validate", "-c", good, "--log-level", "debug", "--state-dir", state)
	cmd.Env = append(os.Environ(), "AUTOSCALERD_LOG_LEVEL=loud")
	if out3, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("flag should win over env: %v %s", err, out3)
	}
}

// TestSimulateCLI replays the seed scenario through the binary and compares with the
// golden file the simulate package keeps.
func TestSimulateCLI(t *testing.T) {
	dir := "../../simulate/testdata/nats-hpa"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svg := filepath.Join(t.TempDir(), "replay.svg")
	out, err := exec.CommandContext(ctx, binary(t), "simulate", "-c", filepath.Join(dir, "autoscalerd.yaml"), "--policy", "workers", "--trace", filepath.Join(dir, "trace.csv"), "--svg", svg).Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "want.csv"))
	if string(out) != string(want) {
		t.Errorf("simulate output differs from %s/want.csv:\n%s", dir, out)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "replicas") {
		t.Errorf("svg: %v %.80s", err, b)
	}
}
