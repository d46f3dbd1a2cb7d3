package process

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/plugintest"
	"github.com/autoscalerd/autoscalerd/targets"
	"go.yaml.in/yaml/v3"
)

func TestReadmeShowsSample(t *testing.T) { plugintest.ReadmeShowsSample(t) }

// decodeTarget decodes a `target:` document the way the loader does.
func decodeTarget(t *testing.T, doc string, env map[string]string) (*Config, error) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	var errs configs.Errors
	d := configs.NewDecoder("t.yaml", &errs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var out struct {
		Target configs.Target `yaml:"target"`
	}
	d.Decode(&root, "", &out)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out.Target.Config.(*Config), nil
}

func TestSampleDecodes(t *testing.T) {
	cfg, err := decodeTarget(t, sample, map[string]string{"WORKER_TOKEN": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/usr/local/bin/worker", "--queue", "default"}; !slices.Equal(cfg.Command, want) {
		t.Errorf("command = %q, want %q", cfg.Command, want)
	}
	if cfg.Env["API_TOKEN"].Value() != "s3cret" || cfg.Env["API_TOKEN"].String() != "<redacted>" {
		t.Errorf("env API_TOKEN = %q (prints %s), want the secret, redacted", cfg.Env["API_TOKEN"].Value(), cfg.Env["API_TOKEN"])
	}
	if cfg.StopTimeout.D() != 30*time.Second || cfg.Restart != RestartOnFailure || cfg.Dir != "/srv/worker" {
		t.Errorf("decoded %+v", cfg)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := decodeTarget(t, "target:\n  process:\n    command: [worker]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StopSignal != "SIGTERM" || cfg.StopTimeout.D() != 10*time.Second || cfg.Restart != RestartAlways {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestEnvSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := decodeTarget(t, "target:\n  process:\n    command: [worker]\n    env: { TOKEN: { file: "+f+" } }\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := newTarget(cfg, targets.Deps{Policy: "pol"}, defaultTiming)
	if err != nil {
		t.Fatal(err)
	}
	if env := tg.childEnv(2); !slices.Contains(env, "TOKEN=from-file") || env[len(env)-1] != "AUTOSCALER_REPLICA=2" {
		t.Errorf("child env ends %q, want TOKEN=from-file and AUTOSCALER_REPLICA=2 last", env[max(0, len(env)-3):])
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"missing command", "target:\n  process:\n    dir: /srv\n",
			`t.yaml:3:5: target.process: missing required key "command"`},
		{"empty command", "target:\n  process:\n    command: []\n",
			`t.yaml:3:14: target.process.command: must name a program (an argv list such as [/usr/local/bin/worker, --queue, default])`},
		{"command is a string", "target:\n  process:\n    command: worker --queue x\n",
			`t.yaml:3:14: target.process.command: "worker --queue x" is one string, but command is a list of arguments run without a shell (write [worker, --queue, x])`},
		{"command is a mapping", "target:\n  process:\n    command: { a: b }\n",
			`t.yaml:3:14: target.process.command: expected a list, got a mapping`},
		{"bad signal", "target:\n  process:\n    command: [w]\n    stop_signal: SIGFOO\n",
			`t.yaml:4:18: target.process.stop_signal: "SIGFOO" is not a stop signal (use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL; the SIG prefix is optional)`},
		{"stop is not a stop signal", "target:\n  process:\n    command: [w]\n    stop_signal: STOP\n",
			`t.yaml:4:18: target.process.stop_signal: "STOP" is not a stop signal (use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL; the SIG prefix is optional)`},
		{"bad restart", "target:\n  process:\n    command: [w]\n    restart: on_failure\n",
			`t.yaml:4:14: target.process.restart: "on_failure" is not a restart policy (use always, on-failure or never)`},
		{"bad stop_timeout", "target:\n  process:\n    command: [w]\n    stop_timeout: 10\n",
			`t.yaml:4:19: target.process.stop_timeout: "10" is not a duration (use 10s)`},
		{"replica env reserved", "target:\n  process:\n    command: [w]\n    env: { AUTOSCALER_REPLICA: \"1\" }\n",
			`t.yaml:4:10: target.process.env: AUTOSCALER_REPLICA is set by autoscalerd for each replica and cannot be overridden`},
		{"unknown key", "target:\n  process:\n    command: [w]\n    restarts: never\n",
			`t.yaml:4:5: target.process: unknown key "restarts" (did you mean "restart"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTarget(t, tc.doc, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestSignalNames(t *testing.T) {
	for in, want := range map[string]string{
		"SIGTERM": "SIGTERM", "TERM": "SIGTERM", "sigint": "SIGINT", "quit": "SIGQUIT",
		" SIGHUP ": "SIGHUP", "USR1": "SIGUSR1", "SIGUSR2": "SIGUSR2", "KILL": "SIGKILL",
	} {
		sig, err := parseSignal(in)
		if err != nil || signalName(sig) != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %s", in, sig, err, want)
		}
	}
	for _, bad := range []string{"", "SIG", "SIGSTOP", "15", "TERMINATE"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) accepted", bad)
		}
	}
}

func TestTargetKey(t *testing.T) {
	a := &Config{Command: []string{"/bin/worker", "--queue", "a b"}}
	if got, want := a.TargetKey(), `["/bin/worker" "--queue" "a b"]`; got != want {
		t.Errorf("key = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name string
		b    *Config
		same bool
	}{
		{"same command", &Config{Command: []string{"/bin/worker", "--queue", "a b"}}, true},
		{"argv boundaries differ", &Config{Command: []string{"/bin/worker", "--queue a", "b"}}, false},
		{"other dir", &Config{Command: a.Command, Dir: "/srv"}, false},
		{"other args", &Config{Command: []string{"/bin/worker", "--queue", "c"}}, false},
	} {
		if same := tc.b.TargetKey() == a.TargetKey(); same != tc.same {
			t.Errorf("%s: same key = %v, want %v (%s vs %s)", tc.name, same, tc.same, tc.b.TargetKey(), a.TargetKey())
		}
	}
	x, y := &Config{Command: []string{"w"}, Dir: "/srv/w/"}, &Config{Command: []string{"w"}, Dir: "/srv/w"}
	if x.TargetKey() != y.TargetKey() {
		t.Errorf("%s and %s name the same directory", x.TargetKey(), y.TargetKey())
	}
	if strings.Contains(x.TargetKey(), "//") {
		t.Error("dir not cleaned")
	}
}
