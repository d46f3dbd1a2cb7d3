package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// NomadAgent is a Nomad dev agent (server and client in one) on loopback, with the
// raw_exec driver enabled so test jobs can run plain commands such as /bin/sleep.
type NomadAgent struct {
	// Addr is the HTTP API address, e.g. http://127.0.0.1:40123.
	Addr string
	// Bin is the nomad binary, for tests that use the CLI against the agent.
	Bin string

	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

const nomadHow = "run scripts/build-nomad.sh once (it builds the nomad binary into ~/.cache/autoscalerd-tools), or put nomad on PATH / set NOMAD_BIN"

// Starting an agent takes seconds, so a test package shares one: SharedNomad starts it on
// first use and TestMain stops it with StopSharedNomad.
var shared struct {
	once  sync.Once
	agent *NomadAgent
	err   error
	// missing is set when the binary is not available (skip or fail via Missing).
	missing bool
}

// SharedNomad returns the test package's Nomad agent, starting it on first use. The
// package's TestMain must call StopSharedNomad after m.Run.
func SharedNomad(t testing.TB) *NomadAgent {
	t.Helper()
	shared.once.Do(func() {
		bin, err := nomadBinary()
		if err != nil {
			shared.err, shared.missing = err, true
			return
		}
		shared.agent, shared.err = StartNomad(context.Background(), bin)
	})
	if shared.missing {
		Missing(t, "nomad", fmt.Sprintf("%v; %s", shared.err, nomadHow))
	}
	if shared.err != nil {
		t.Fatalf("nomad agent: %v", shared.err)
	}
	return shared.agent
}

// StopSharedNomad stops the package's agent if SharedNomad started one.
func StopSharedNomad() {
	if shared.agent != nil {
		shared.agent.Stop()
	}
}

// nomadBinary finds the nomad binary: $NOMAD_BIN, PATH, then the tools cache that
// scripts/build-nomad.sh fills (see toolBinary).
func nomadBinary() (string, error) { return toolBinary("nomad", "NOMAD_BIN", "build-nomad.sh") }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// nomadDevConfig is the agent's config on top of -dev. The fingerprint denylist matters:
// the cloud fingerprinters probe instance metadata endpoints, and in a sandbox without
// them the agent exits on an IMDS client error.
const nomadDevConfig = `
data_dir = %q
disable_update_check = true
log_level = "INFO"
ports {
  http = %d
  rpc  = %d
  serf = %d
}
client {
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
`

// StartNomad starts a dev agent from bin in a temp dir on free loopback ports and waits
// until it has a leader and a ready client node with raw_exec. Stop it with Stop.
func StartNomad(ctx context.Context, bin string) (*NomadAgent, error) {
	dir, err := os.MkdirTemp("", "autoscalerd-nomad-")
	if err != nil {
		return nil, err
	}
	a := &NomadAgent{Bin: bin, dir: dir, logPath: filepath.Join(dir, "nomad.log"), done: make(chan struct{})}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	hcl := fmt.Sprintf(nomadDevConfig, filepath.Join(dir, "data"), ports[0], ports[1], ports[2])
	cfgPath := filepath.Join(dir, "dev.hcl")
	if err := os.WriteFile(cfgPath, []byte(hcl), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	a.cmd = exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-config", cfgPath)
	a.cmd.Dir = dir
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	// Die with the test binary even if it is killed before Stop runs. Its own process
	// group, so Stop can also end the plugin processes (logmon) it leaves behind.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = a.cmd.Wait()
		logFile.Close()
		close(a.done)
	}()
	a.Addr = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := a.waitReady(ctx, 90*time.Second); err != nil {
		tail := a.LogTail(3000)
		a.Stop()
		return nil, fmt.Errorf("%w\n--- nomad log (end) ---\n%s", err, tail)
	}
	return a, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago; holding all
// listeners at once keeps them distinct.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady waits for a leader and a ready client node whose raw_exec driver is healthy:
// before that, jobs register but do not place.
func (a *NomadAgent) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := a.Client()
	if err != nil {
		return err
	}
	last := errors.New("not started")
	for {
		select {
		case <-a.done:
			return errors.New("nomad agent exited during start")
		case <-ctx.Done():
			return fmt.Errorf("nomad agent not ready within %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
		q := (&api.QueryOptions{}).WithContext(ctx)
		if leader, err := c.Status().Leader(); err != nil || leader == "" {
			last = fmt.Errorf("no leader yet: %v", err)
			continue
		}
		nodes, _, err := c.Nodes().List(q)
		if err != nil {
			last = err
			continue
		}
		for _, n := range nodes {
			if d := n.Drivers["raw_exec"]; n.Status == "ready" && d != nil && d.Healthy {
				return nil
			}
		}
		last = errors.New("no ready client node with a healthy raw_exec driver")
	}
}

// Client returns an API client for the agent.
func (a *NomadAgent) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	cfg.SecretID = ""
	cfg.Namespace = api.DefaultNamespace
	cfg.Region = ""
	return api.NewClient(cfg)
}

// LogTail returns the last n bytes of the agent's log, for failure messages.
func (a *NomadAgent) LogTail(n int) string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop stops the agent (in dev mode it stops its allocations on the way out), the plugin
// processes it leaves behind, and removes its directory with the task mounts in it.
func (a *NomadAgent) Stop() {
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	unmountUnder(a.dir)
	_ = os.RemoveAll(a.dir)
}

// unmountUnder detaches the mounts below dir: as root, Nomad mounts a tmpfs for every
// task's secrets and private directories, and RemoveAll cannot remove those.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	// Deepest first.
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
