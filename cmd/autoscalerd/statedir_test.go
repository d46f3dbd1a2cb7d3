package main_test

import (
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// readOnlyDir returns a directory this process cannot write to: a read-only bind mount
// when running as root (root ignores permission bits), otherwise a directory without
// write permission.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		testenv.Missing(t, "a bind mount (as root)", fmt.Sprintf("mount failed (%v); run as a non-root user instead", err))
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		testenv.Missing(t, "a read-only remount (as root)", fmt.Sprintf("remount failed (%v); run as a non-root user instead", err))
	}
	return dir
}

// TestValidateReadOnlyStateDir: a state_dir the daemon cannot write makes `run` exit 1, so
// `validate` must not call the file valid; it names the setting's position. A state_dir
// that does not exist yet but can be created is fine, and validate does not create it.
func TestValidateReadOnlyStateDir(t *testing.T) {
	ro := readOnlyDir(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	body := fmt.Sprintf(e2eConfig, "1", 3, "http://127.0.0.1:1/x")
	os.WriteFile(cfg, []byte("state_dir: "+ro+"\n"+body), 0o644)
	exitCode := func(args ...string) (int, string) {
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	c, out := exitCode("validate", "-c", cfg)
	want := cfg + ":1:12: state_dir: " + ro + " is not writable ("
	if c != 2 || !strings.Contains(out, want) {
		t.Errorf("validate with a read-only state_dir: exit %d, want 2 and %q in:\n%s", c, want, out)
	}
	if c, out := exitCode("run", "-c", cfg); c != 1 {
		t.Errorf("run with a read-only state_dir: exit %d, want 1 (what validate warns about):\n%s", c, out)
	}
	// Given by flag: the position says so. Below the read-only directory: its parent is named.
	c, out = exitCode("validate", "-c", cfg, "--state-dir", filepath.Join(ro, "sub", "state"))
	want = "(flags or environment): state_dir: " + filepath.Join(ro, "sub", "state") + " does not exist and its parent " + ro + " is not writable"
	if c != 2 || !strings.Contains(out, want) {
		t.Errorf("validate --state-dir under a read-only directory: exit %d, want 2 and %q in:\n%s", c, want, out)
	}
	fresh := filepath.Join(dir, "new", "state")
	if c, out := exitCode("validate", "-c", cfg, "--state-dir", fresh); c != 0 {
		t.Errorf("validate with a creatable state_dir: exit %d:\n%s", c, out)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("validate created %s (err %v); it must touch nothing", fresh, err)
	}
}
