package reaper_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/reaper"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// TestOrphansOfLiveOwnersStay: an orphan whose owner still runs is a helper the owner
// daemonised and is left alone; once the owner is released it is killed and reaped. An
// orphan that cleared its environment cannot be attributed and goes at the next sweep.
func TestOrphansOfLiveOwnersStay(t *testing.T) {
	testenv.LookPath(t, "setsid", "install util-linux")
	stop, err := reaper.Enable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // last: the cleanups below still need the subreaper
	dir := t.TempDir()
	helper, anon := filepath.Join(dir, "helper"), filepath.Join(dir, "anon")
	// The subshell exits at once, so both sleeps are orphaned while the owner runs on.
	cmd := exec.Command("sh", "-c", "(setsid sleep 3600.71 & echo $! > "+helper+"; env -i setsid sleep 3600.72 & echo $! > "+anon+"); exec sleep 3600.73")
	owner, err := reaper.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); owner.Release() })
	h, a := readPid(t, helper), readPid(t, anon)
	testenv.WaitReaped(t, 5*time.Second, a)
	reaper.Sweep()
	if testenv.ProcessGone(h) || testenv.ProcessGone(cmd.Process.Pid) {
		t.Fatal("a sweep killed the helper of a live owner, or the owner itself")
	}
	cmd.Process.Kill()
	cmd.Wait()
	owner.Release()
	testenv.WaitReaped(t, 5*time.Second, h)
}
