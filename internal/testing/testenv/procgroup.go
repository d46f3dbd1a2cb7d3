package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startProcessGroup starts cmd in a process group of its own and, when the test ends, sends the
// group SIGTERM (Erlang shuts down cleanly on it), then SIGKILL if it lingers. The
// returned channel is closed when the process exits.
func startProcessGroup(t testing.TB, cmd *exec.Cmd, name string) <-chan struct{} {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Logf("%s did not stop within 20s of SIGTERM; killing it", name)
		}
		// Children of the group (Erlang's port programs) may outlive the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	})
	return exited
}

// waitRabbitMQAPI polls url until it answers 200, the process exits, or timeout passes.
func waitHTTPReady(url, user, password string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered (last: %s)", url, last)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
