package process

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/targets"
)

func TestReadmeShowsSample(t *testing.T) { plugintest.ReadmeShowsSample(t) }

// decode decodes the body of a `process:` target as the loader does, defaults and checks
// included.
func decode(t *testing.T, body string, env map[string]string) (*Config, error) {
	t.Helper()
	cfg := defaultConfig()
	return cfg, plugintest.Decode(t, body, cfg, env)
}

func TestSampleDecodes(t *testing.T) {
	// Through the target registry, as in a policy.
	var policy struct {
		Target configs.Target `yaml:"target"`
	}
	if err := plugintest.Decode(t, sample, &policy, map[string]string{"WORKER_TOKEN": "s3cret"}); err != nil {
		t.Fatal(err)
	}
	cfg, ok := policy.Target.Config.(*Config)
	if policy.Target.Kind != "process" || !ok {
		t.Fatalf("sample decodes to target kind %q (%T)", policy.Target.Kind, policy.Target.Config)
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
	cfg, err := decode(t, "command: [worker]\n", nil)
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
	cfg, err := decode(t, "command: [worker]\nenv: { TOKEN: { file: "+f+" } }\n", nil)
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
		{"missing command", "dir: /srv\n",
			`test.yaml:1:1: q: missing required key "command"`},
		{"empty command", "command: []\n",
			`test.yaml:1:10: q.command: must name a program (an argv list such as [/usr/local/bin/worker, --queue, default])`},
		{"command is a string", "command: worker --queue x\n",
			`test.yaml:1:10: q.command: "worker --queue x" is one string, but command is a list of arguments run without a shell (write [worker, --queue, x])`},
		{"command is a mapping", "command: { a: b }\n",
			`test.yaml:1:10: q.command: expected a list, got a mapping`},
		{"bad signal", "command: [w]\nstop_signal: SIGFOO\n",
			`test.yaml:2:14: q.stop_signal: "SIGFOO" is not a stop signal (use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL; the SIG prefix is optional)`},
		{"stop is not a stop signal", "command: [w]\nstop_signal: STOP\n",
			`test.yaml:2:14: q.stop_signal: "STOP" is not a stop signal (use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL; the SIG prefix is optional)`},
		{"bad restart", "command: [w]\nrestart: on_failure\n",
			`test.yaml:2:10: q.restart: "on_failure" is not a restart policy (use always, on-failure or never)`},
		{"bad stop_timeout", "command: [w]\nstop_timeout: 10\n",
			`test.yaml:2:15: q.stop_timeout: "10" is not a duration (use 10s)`},
		{"replica env reserved", "command: [w]\nenv: { AUTOSCALER_REPLICA: \"1\" }\n",
			`test.yaml:2:6: q.env: AUTOSCALER_REPLICA is set by autoscalerd for each replica and cannot be overridden`},
		{"warm stopped", "command: [w]\nwarm: { size: 2, state: stopped }\n",
			`test.yaml:2:25: q.warm.state: a process cannot be made without being started, so a stopped pool would hold nothing; use paused (started, then SIGSTOPped)`},
		{"warm unresumable drain", "command: [w]\ndrain: { busy: { file: /b }, quiet_signal: SIGUSR1 }\nwarm: { size: 2 }\n",
			`test.yaml:3:7: q.warm: a paused member is told to go quiet (the drain block's quiet) before it is frozen, and nothing could tell it to take work again once handed out; add resume_signal or resume to the drain block`},
		{"warm reuse without drain", "command: [w]\nwarm: { size: 2, reuse_on_scale_in: true }\n",
			`test.yaml:2:37: q.warm.reuse_on_scale_in: parking a replica paused would freeze the job it is working on; add a drain: block so it is parked only once idle`},
		{"unknown key", "command: [w]\nrestarts: never\n",
			`test.yaml:2:1: q: unknown key "restarts" (did you mean "restart"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.doc, nil)
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

func TestTwoPoliciesOneCommandRefused(t *testing.T) {
	const file = `
policies:
  - name: a
    target: { process: { command: [/bin/worker, -q, x], dir: /srv/w } }
    max: 3
    replicas: "1"
  - name: b
    target: { process: { command: [/bin/worker, -q, x], dir: /srv/w/, restart: never } }
    max: 3
    replicas: "1"
  - name: c
    target: { process: { command: [/bin/worker, -q, y], dir: /srv/w } }
    max: 3
    replicas: "1"
`
	_, err := configs.Parse("a.yaml", []byte(file), configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	const want = `a.yaml:8:13: policies[1].target: policy "b" drives the same target as policy "a" (process:["/bin/worker" "-q" "x"] in /srv/w, at a.yaml:4:13); two policies may not drive one target`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}
