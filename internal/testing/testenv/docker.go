package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

const dockerHow = "install docker.io and docker-compose (apt-get install docker.io docker-compose) and run scripts/start-dockerd.sh as root"

// RepoRoot returns the module's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// dockerMu serialises engine restarts against tests that need a running engine.
var dockerMu sync.Mutex

// Docker makes sure a Docker engine runs (starting one with scripts/start-dockerd.sh if
// needed) and returns a client for it. The client talks to DOCKER_HOST or the default
// socket, like the targets do.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	LookPath(t, "docker", dockerHow)
	lockDocker(t)
	dockerMu.Lock()
	defer dockerMu.Unlock()
	if err := startDockerd(t); err != nil {
		Missing(t, "the Docker engine", err.Error())
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The engine is one per machine and some tests restart it or switch it into swarm mode, so
// Docker tests of different packages (separate processes under `go test ./...`) take
// turns: an exclusive flock, held from a test's first Docker call until it ends.
var dockerLock struct {
	sync.Mutex
	refs int
	f    *os.File
}

func lockDocker(t testing.TB) {
	t.Helper()
	dockerLock.Lock()
	defer dockerLock.Unlock()
	if dockerLock.refs == 0 {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "autoscalerd-docker-tests.lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("docker test lock: %v", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("docker test lock: %v", err)
		}
		dockerLock.f = f
	}
	dockerLock.refs++
	t.Cleanup(func() {
		dockerLock.Lock()
		defer dockerLock.Unlock()
		dockerLock.refs--
		if dockerLock.refs == 0 {
			dockerLock.f.Close() // releases the flock
			dockerLock.f = nil
		}
	})
}

func startDockerd(t testing.TB) error {
	script := filepath.Join(RepoRoot(t), "scripts", "start-dockerd.sh")
	out, err := exec.Command(script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", script, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RestartDocker stops the engine (SIGTERM to dockerd, which runs with
// --live-restore=false, so its containers stop with it, as on a host reboot), runs down
// while it is stopped, then starts it again with scripts/start-dockerd.sh. Later tests
// always find an engine: a failed restart is retried in Cleanup.
func RestartDocker(t testing.TB, down func()) {
	t.Helper()
	restartEngine(t, "/var/run/docker.pid", func() error { return startDockerd(t) }, down)
}

func restartEngine(t testing.TB, pidfile string, start func() error, down func()) {
	t.Helper()
	dockerMu.Lock()
	defer dockerMu.Unlock()
	t.Cleanup(func() {
		if err := start(); err != nil {
			t.Errorf("bringing the engine back: %v", err)
		}
	})
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("restart docker: engine pid: %v (only an engine started by scripts/start-dockerd.sh or start-dockerd-current.sh can be restarted)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("restart docker: bad pid file: %v", err)
	}
	// SIGTERM, not SIGKILL: a killed dockerd leaves its containerd and shims behind, which
	// a new dockerd then fights with. A terminated one stops its containers (they get the
	// stop signal, like on a host shutdown) and exits.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("restart docker: kill %d: %v", pid, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("restart docker: dockerd %d did not exit within 60s", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if down != nil {
		down()
	}
	if err := start(); err != nil {
		t.Fatalf("restart docker: %v", err)
	}
}

// The worker binary is built once per test process; its image once per engine.
var workerImage struct {
	once sync.Once
	bin  []byte
	err  error

	mu   sync.Mutex
	tags map[string]string // by engine host
}

// WorkerImage returns the tag of a FROM-scratch image around internal/testing/testworker, building
// it on c's engine on first use. The tag is derived from the binary's content (Go builds are
// reproducible), so an unchanged worker is built into an image once per machine and engine.
func WorkerImage(t testing.TB, c client.APIClient) string {
	t.Helper()
	workerImage.once.Do(func() {
		workerImage.bin, workerImage.err = BuildStatic(t, "./internal/testing/testworker")
	})
	if workerImage.err != nil {
		t.Fatalf("test worker image: %v", workerImage.err)
	}
	workerImage.mu.Lock()
	defer workerImage.mu.Unlock()
	if tag, ok := workerImage.tags[c.DaemonHost()]; ok {
		return tag
	}
	tag, err := ScratchImage(c, "autoscalerd-testworker", workerImage.bin, []string{"/testworker"}, []string{"serve"}, "8080")
	if err != nil {
		t.Fatalf("test worker image: %v", err)
	}
	if workerImage.tags == nil {
		workerImage.tags = map[string]string{}
	}
	workerImage.tags[c.DaemonHost()] = tag
	return tag
}

// BuildStatic builds the main package pkg (relative to the module root) as a static
// binary (CGO_ENABLED=0), for FROM-scratch images, and returns its content.
func BuildStatic(t testing.TB, pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "static")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v: %s", pkg, err, out)
	}
	return os.ReadFile(bin)
}

// ScratchImage builds an image FROM scratch holding binary as path entrypoint[0], unless
// an image with the same content exists already. Its tag is repo:<content hash>.
// (Images cannot be pulled here, so every test image is built this way.)
func ScratchImage(c client.APIClient, repo string, binary []byte, entrypoint, cmd []string, expose string) (string, error) {
	ep, _ := json.Marshal(entrypoint)
	cm, _ := json.Marshal(cmd)
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY bin %s\n", entrypoint[0])
	if expose != "" {
		dockerfile += "EXPOSE " + expose + "\n"
	}
	dockerfile += fmt.Sprintf("ENTRYPOINT %s\n", ep)
	if len(cmd) > 0 {
		dockerfile += fmt.Sprintf("CMD %s\n", cm)
	}
	sum := sha256.Sum256(append(binary, dockerfile...))
	tag := repo + ":" + hex.EncodeToString(sum[:])[:16]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"bin", 0o755, binary}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := c.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	defer res.Body.Close()
	// The build's outcome is in the JSON stream, not the HTTP status.
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("build %s: reading output: %w", tag, err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build %s: %s", tag, msg.Error)
		}
	}
	if _, err := c.ImageInspect(ctx, tag); err != nil {
		return "", fmt.Errorf("build %s: image missing after build: %w", tag, err)
	}
	return tag, nil
}

// Compose runs the Debian docker-compose (v1) CLI in dir with project name project and
// returns its combined output; a failure fails the test.
func Compose(t testing.TB, dir, project string, args ...string) string {
	t.Helper()
	out, err := ComposeErr(dir, project, args...)
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ComposeErr is Compose without failing the test.
func ComposeErr(dir, project string, args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", project, "--ansi", "never"}, args...)...)
	cmd.Dir = dir
	// docker-compose v1 talks to the same engine as the tests; the env carries DOCKER_HOST.
	cmd.Env = append(os.Environ(), "COMPOSE_INTERACTIVE_NO_CLI=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ComposeProject writes compose.yml into a temp dir, runs `docker-compose up -d` with
// project name project, and removes everything of the project (containers, networks,
// volumes) when the test ends. It returns the directory.
func ComposeProject(t testing.TB, project, composeYAML string, upArgs ...string) string {
	t.Helper()
	LookPath(t, "docker-compose", dockerHow)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := ComposeErr(dir, project, "down", "-v", "--remove-orphans", "-t", "1"); err != nil {
			t.Logf("docker-compose down: %v\n%s", err, out)
		}
	})
	Compose(t, dir, project, append([]string{"up", "-d"}, upArgs...)...)
	return dir
}
