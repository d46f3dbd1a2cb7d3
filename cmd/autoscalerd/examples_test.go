package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// placeholders stand in for the secrets and addresses the examples take from the
// environment; validate touches no source or target, so they only have to be well-formed.
var placeholders = map[string]string{
	"HATCHET_TENANT_ID":      "707d0855-80ab-4e1f-a156-f1c4546cbf52",
	"TASKS_DSN":              "postgres://autoscaler:secret@127.0.0.1:5432/tasks",
	"NATS_URL":               "nats://127.0.0.1:4222",
	"PROMETHEUS_ADDR":        "http://127.0.0.1:9091",
	"PROMETHEUS_URL":         "http://127.0.0.1:9091",
	"TEMPORAL_ADDRESS":       "127.0.0.1:7233",
	"NOMAD_ALLOC_DIR":        "/tmp",
	"COMPOSE_PROJECT_NAME":   "example",
	"AUTOSCALERD_API_TOKEN":  "example-token",
	"TEMPORAL_NAMESPACE":     "default",
	"HATCHET_TOKEN":          "example-token",
	"NATS_PASSWORD":          "example-password",
	"AUTOSCALERD_DOCKER_GID": "999",
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// TestExamplesValidate runs `autoscalerd validate` on every example configuration, the
// way a user would after copying it.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/autoscalerd.yaml")
	if len(files) < 7 {
		t.Fatalf("found %d example configurations, want one per scenario (at least 7)", len(files))
	}
	for _, f := range files {
		f, _ = filepath.Abs(f)
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// An example's state_dir is what its deployment mounts; this machine may not be
			// able to write there, and validate checks that it could.
			env := append(os.Environ(), "AUTOSCALERD_STATE_DIR="+t.TempDir())
			for _, m := range envRef.FindAllStringSubmatch(string(src), -1) {
				if m[2] != "" {
					continue // has a default
				}
				v, ok := placeholders[m[1]]
				if !ok {
					t.Fatalf("%s uses ${%s}; add a placeholder for it to this test", f, m[1])
				}
				env = append(env, m[1]+"="+v)
			}
			// Off the machine each example is for: its workers are not installed here.
			cmd := exec.Command(binary(t), "validate", "--skip-host-checks", "-c", f)
			cmd.Env = env
			cmd.Dir = filepath.Dir(f)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "valid") {
				t.Errorf("validate %s: %v\n%s", f, err, out)
			}
		})
	}
}

// TestValidateFindsMissingWorker: on a machine without the systemd example's worker,
// validate says so instead of "valid", and the daemon would only have shown failing
// scale-ups.
func TestValidateFindsMissingWorker(t *testing.T) {
	f, _ := filepath.Abs("../../examples/systemd/autoscalerd.yaml")
	cmd := exec.Command(binary(t), "validate", "-c", f, "--state-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "DATABASE_URL="+placeholders["DATABASE_URL"])
	cmd.Dir = filepath.Dir(f)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "target.process.command: /usr/local/bin/worker does not exist here") {
		t.Errorf("validate: %v\n%s", err, out)
	}
}
