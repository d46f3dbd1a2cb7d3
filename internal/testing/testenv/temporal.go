package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Temporal is a Temporal dev server (`temporal server start-dev`) started for one test.
type Temporal struct {
	// Address is the frontend's gRPC host:port.
	Address string
	// HTTPURL is the HTTP API's base, e.g. http://127.0.0.1:7243.
	HTTPURL string
	// Log is the server's output, worth reading when a test fails.
	Log string
}

const temporalHow = "run scripts/build-temporal.sh once (it builds the Temporal CLI into ~/.cache/autoscalerd-tools), or put temporal on PATH / set TEMPORAL_BIN"

// StartTemporal starts a dev server (in-memory SQLite, no UI) on free loopback ports and
// stops it when the test ends. It returns once the default namespace answers over HTTP,
// which comes after the frontend and the namespace registry are up.
func StartTemporal(t testing.TB) *Temporal {
	t.Helper()
	bin, err := toolBinary("temporal", "TEMPORAL_BIN", "build-temporal.sh")
	if err != nil {
		Missing(t, "temporal", fmt.Sprintf("%v; %s", err, temporalHow))
	}
	dir := t.TempDir()
	grpcPort, httpPort, metricsPort := FreePort(t), FreePort(t), FreePort(t)
	tp := &Temporal{
		Address: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		HTTPURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		Log:     filepath.Join(dir, "temporal.log"),
	}
	logf, err := os.Create(tp.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command(bin, "server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", fmt.Sprint(grpcPort), "--http-port", fmt.Sprint(httpPort),
		"--metrics-port", fmt.Sprint(metricsPort), "--log-level", "warn",
		// No user config may leak in from the machine running the tests.
		"--disable-config-file", "--disable-config-env")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	exited := startProcessGroup(t, cmd, "temporal")

	if err := waitHTTPReady(tp.HTTPURL+"/api/v1/namespaces/default", "", "", exited, 60*time.Second); err != nil {
		t.Fatalf("temporal server: %v\n%s", err, tp.LogTail())
	}
	return tp
}

// LogTail is the end of the server's output.
func (tp *Temporal) LogTail() string {
	b, _ := os.ReadFile(tp.Log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// toolBinary finds a tool that scripts/<script> builds into the tools cache: $envVar,
// PATH, then the cache (~/.cache/autoscalerd-tools/<name>-<version>/<name>). Under CI it
// runs the script (which builds once, under a file lock so parallel test packages do not
// build twice); elsewhere a tool not built yet skips the test rather than spend many
// minutes compiling inside it.
func toolBinary(name, envVar, script string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	cache := os.Getenv("AUTOSCALERD_TOOLS_DIR")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "autoscalerd-tools")
	}
	if !InCI() {
		found, _ := filepath.Glob(filepath.Join(cache, name+"-*", name))
		if len(found) == 0 {
			return "", fmt.Errorf("no %s binary in %s", name, cache)
		}
		return found[len(found)-1], nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".build-"+name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	path := filepath.Join(root, "scripts", script)
	var stderr bytes.Buffer
	cmd := exec.Command("bash", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", path, err, lastLine(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
