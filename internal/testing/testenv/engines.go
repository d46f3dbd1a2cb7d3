package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// Engine is one Docker engine the Docker tests run against, with the docker CLI and the
// compose CLIs that go with it. Engines lists them; a test runs one subtest per engine
// and calls Need in it.
type Engine struct {
	// Name is the subtest name: "engine20" (Debian's docker.io 20.10 on the default
	// socket) or "engine29" (Engine 29 built by scripts/build-docker-current.sh, started
	// beside it by scripts/start-dockerd-current.sh).
	Name string
	// Host is the engine's DOCKER_HOST; "" for Debian's (DOCKER_HOST or the default socket).
	Host string
	// DockerCLI is the docker CLI to use with it (its own version).
	DockerCLI string
	// Composes are the compose CLIs tested against it, python docker-compose 1.29 first.
	Composes []*ComposeCLI

	// Client talks to the engine; set by Need.
	Client *client.Client

	script  string // the start script, which prints the host
	pidfile string
	current bool
}

// ComposeCLI is one compose implementation run against one engine.
type ComposeCLI struct {
	// Name is the subtest name: "compose1" (python docker-compose 1.29) or "compose5"
	// (Compose v5, the Go compose of `docker compose`).
	Name string
	// Bin is its executable.
	Bin string
	// Sep separates project, service and number in the container names it makes:
	// "_" for compose 1 (shop_worker_1), "-" from compose 2 on (shop-worker-1).
	Sep string

	engine *Engine
}

// currentDir is where scripts/build-docker-current.sh puts the current Docker.
func currentDir() string {
	cache := os.Getenv("AUTOSCALERD_TOOLS_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "autoscalerd-tools")
	}
	return filepath.Join(cache, "docker-current")
}

const currentHow = "run scripts/build-docker-current.sh once (it builds Engine 29, containerd 2, runc 1.5 and Compose v5 into ~/.cache/autoscalerd-tools/docker-current; runc needs apt-get install libseccomp-dev), then scripts/start-dockerd-current.sh as root"

// Engines returns the engines the Docker tests run against: Debian's Engine 20.10 with
// docker-compose 1.29 and Compose v5, and Engine 29 with Compose v5 and docker-compose
// 1.29. It starts nothing: Engine.Need does, in the subtest, so that a missing engine
// fails (CI=true) or skips only its own subtests.
func Engines(t testing.TB) []*Engine {
	t.Helper()
	w := currentDir()
	v5 := filepath.Join(w, "bin", "docker-compose-v5")
	old := &Engine{Name: "engine20", DockerCLI: "docker", pidfile: "/var/run/docker.pid",
		script: filepath.Join(RepoRoot(t), "scripts", "start-dockerd.sh")}
	cur := &Engine{Name: "engine29", DockerCLI: filepath.Join(w, "bin", "docker"), current: true,
		pidfile: "/run/autoscalerd-docker29/dockerd.pid",
		script:  filepath.Join(RepoRoot(t), "scripts", "start-dockerd-current.sh")}
	for _, e := range []*Engine{old, cur} {
		e.Composes = []*ComposeCLI{
			{Name: "compose1", Bin: "docker-compose", Sep: "_", engine: e},
			{Name: "compose5", Bin: v5, Sep: "-", engine: e},
		}
	}
	return []*Engine{old, cur}
}

// Compose returns the engine's compose CLI called name ("compose1", "compose5").
func (e *Engine) Compose(name string) *ComposeCLI {
	for _, c := range e.Composes {
		if c.Name == name {
			return c
		}
	}
	panic("testenv: no compose CLI " + name)
}

// UsualCompose is the compose CLI that usually goes with the engine: docker-compose 1.29
// with Debian's 20.10 (both Debian packages), Compose v5 with Engine 29. Tests whose
// subject does not depend on the compose CLI run with it only, once per engine.
func (e *Engine) UsualCompose() *ComposeCLI {
	if e.current {
		return e.Compose("compose5")
	}
	return e.Compose("compose1")
}

// Need makes sure the engine runs (starting it if needed), takes the machine's Docker
// test lock for the test and sets e.Client. A missing engine or CLI fails the test under
// CI=true and skips it elsewhere.
func (e *Engine) Need(t testing.TB) *client.Client {
	t.Helper()
	if e.current {
		if _, err := os.Stat(e.DockerCLI); err != nil {
			Missing(t, "Docker Engine 29", fmt.Sprintf("%v; %s", err, currentHow))
		}
	} else {
		LookPath(t, "docker", dockerHow)
	}
	lockDocker(t)
	dockerMu.Lock()
	host, err := e.start(t)
	dockerMu.Unlock()
	if err != nil {
		how := dockerHow
		if e.current {
			how = currentHow
		}
		Missing(t, "the Docker engine "+e.Name, fmt.Sprintf("%v; %s", err, how))
	}
	e.Host = host
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		t.Fatalf("docker client for %s: %v", e.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	e.Client = c
	return c
}

// start runs the engine's start script; the current engine's prints its host.
func (e *Engine) start(t testing.TB) (string, error) {
	out, err := exec.Command("bash", e.script).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("%s: %v: %s", e.script, err, msg)
	}
	if !e.current {
		return "", nil
	}
	host := lastLine(strings.TrimSpace(string(out)))
	if !strings.HasPrefix(host, "unix://") {
		return "", fmt.Errorf("%s printed %q, not a unix:// host", e.script, host)
	}
	return host, nil
}

// NeedCompose is Need for a test that also runs cli: it fails or skips when cli is missing.
func (c *ComposeCLI) NeedCompose(t testing.TB) *client.Client {
	t.Helper()
	cl := c.engine.Need(t)
	if _, err := exec.LookPath(c.Bin); err != nil {
		how := dockerHow
		if c.engine.current || c.Name == "compose5" {
			how = currentHow
		}
		Missing(t, c.Name, fmt.Sprintf("%v; %s", err, how))
	}
	return cl
}

// Env is the environment for a CLI talking to the engine.
func (e *Engine) Env() []string {
	env := os.Environ()
	if e.Host != "" {
		env = append(env, "DOCKER_HOST="+e.Host)
	}
	return env
}

// DockerErr runs the engine's docker CLI and returns its combined output, trimmed.
func (e *Engine) DockerErr(args ...string) (string, error) {
	cmd := exec.Command(e.DockerCLI, args...)
	cmd.Env = e.Env()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Docker is DockerErr failing the test on an error.
func (e *Engine) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.DockerErr(args...)
	if err != nil {
		t.Fatalf("%s: docker %s: %v\n%s", e.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// Restart stops the engine (SIGTERM; its containers stop with it, as on a host reboot),
// runs down while it is stopped, and starts it again. See RestartDocker.
func (e *Engine) Restart(t testing.TB, down func()) {
	t.Helper()
	restartEngine(t, e.pidfile, func() error { _, err := e.start(t); return err }, down)
}

// Engine is the engine the compose CLI runs against.
func (c *ComposeCLI) Engine() *Engine { return c.engine }

// RunErr runs the compose CLI in dir with project name project and returns its combined
// output.
func (c *ComposeCLI) RunErr(dir, project string, args ...string) (string, error) {
	pre := []string{"-p", project, "--ansi", "never"}
	cmd := exec.Command(c.Bin, append(pre, args...)...)
	cmd.Dir = dir
	cmd.Env = append(c.engine.Env(), "COMPOSE_INTERACTIVE_NO_CLI=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Run is RunErr failing the test on an error.
func (c *ComposeCLI) Run(t testing.TB, dir, project string, args ...string) string {
	t.Helper()
	out, err := c.RunErr(dir, project, args...)
	if err != nil {
		t.Fatalf("%s on %s: %s %s: %v\n%s", c.Name, c.engine.Name, c.Bin, strings.Join(args, " "), err, out)
	}
	return out
}

// Project writes composeYAML as docker-compose.yml into a temp dir, runs `up -d` with
// project name project, and removes everything of the project (containers, networks,
// volumes) when the test ends. It returns the directory.
func (c *ComposeCLI) Project(t testing.TB, project, composeYAML string, upArgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := c.RunErr(dir, project, "down", "-v", "--remove-orphans", "-t", "1"); err != nil {
			t.Logf("%s down: %v\n%s", c.Name, err, out)
		}
	})
	c.Run(t, dir, project, append([]string{"up", "-d"}, upArgs...)...)
	return dir
}

// WorkerImage is the test worker image on the engine, built there on first use.
func (e *Engine) WorkerImage(t testing.TB) string {
	t.Helper()
	return WorkerImage(t, e.Client)
}
