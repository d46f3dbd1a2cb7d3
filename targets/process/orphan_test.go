package process

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildrenDieWithDaemon runs a stand-in daemon (this binary in "daemon" mode) that
// scales a process target to 3, SIGKILLs it, and checks that its children go too: nothing
// can clean up after a SIGKILL except the kernel's parent-death signal.
func TestChildrenDieWithDaemon(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(self)
	daemon.Env = append(os.Environ(), childModeEnv+"=daemon")
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stderr = os.Stderr
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
	})

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Wait for the pids and for every child to say it runs: a child killed before it
	// wrote to its (then broken) stdout would die of SIGPIPE and prove nothing.
	var pids []int
	ready := 0
	timeout := time.After(30 * time.Second)
	for pids == nil || ready < 3 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("daemon exited early")
			}
			if strings.Contains(line, "leader ready") {
				ready++
			}
			rest, found := strings.CutPrefix(line, "pids ")
			if !found {
				continue
			}
			for _, f := range strings.Fields(rest) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("daemon said %q", line)
				}
				pids = append(pids, pid)
			}
		case <-timeout:
			t.Fatalf("daemon did not report 3 running children within 30s (pids %v, %d ready)", pids, ready)
		}
	}
	t.Cleanup(func() {
		// Only matters when the test fails: leave no stray children behind.
		for _, pid := range pids {
			if !processGone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if len(pids) != 3 {
		t.Fatalf("daemon reported %d children, want 3", len(pids))
	}
	for _, pid := range pids {
		if processGone(pid) {
			t.Fatalf("child %d is not running before the daemon is killed", pid)
		}
	}

	if err := daemon.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = daemon.Wait()
	waitGone(t, 2*time.Second, pids...)
}
