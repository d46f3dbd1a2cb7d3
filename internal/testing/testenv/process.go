package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startServer starts cmd with its output in dir/<name>.log and stops it when the test
// ends: SIGTERM, then SIGKILL after 10s. If the test failed, the end of the log is printed,
// because "connection refused" alone rarely says why a server did not come up.
func startServer(t testing.TB, name, dir string, cmd *exec.Cmd) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Die with the test binary even if it is killed before Cleanup runs.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			logTail(t, name, logPath)
		}
	})
}

// logTail prints the last few KiB of a server's log.
func logTail(t testing.TB, name, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	t.Logf("%s log (%s), last part:\n%s", name, path, b)
}
