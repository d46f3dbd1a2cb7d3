// Package systemdexample checks the systemd example: the config loads with the example
// environment, and systemd accepts the unit.
package systemdexample

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	_ "github.com/autoscalerd/autoscalerd/sources/postgres"
	_ "github.com/autoscalerd/autoscalerd/targets/process"
)

func TestConfigLoads(t *testing.T) {
	env := readEnvFile(t, "env.example")
	ps := exampletest.Load(t, "autoscalerd.yaml", env)
	// 50 queued rows per worker.
	if got, why := exampletest.Desired(ps[0], 1, 120); got != 3 {
		t.Errorf("120 queued from 1 worker: desired %d (%s), want 3", got, why)
	}
	cfg, err := configs.Load("autoscalerd.yaml", configs.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("autoscalerd.yaml with env.example:\n%v", err)
	}
	if cfg.StateDir != "/var/lib/autoscalerd" {
		t.Errorf("state_dir %q is not the unit's StateDirectory", cfg.StateDir)
	}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with ExecStart pointing at an
// executable that exists here.
func TestUnitVerifies(t *testing.T) {
	analyze := testenv.LookPath(t, "systemd-analyze", "apt-get install systemd")
	unit, err := os.ReadFile("autoscalerd.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{"Type=notify", "WatchdogSec=30s", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=mixed"} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "autoscalerd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/autoscalerd", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
