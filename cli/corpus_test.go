package cli_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
	httpsrc "github.com/autoscalerd/autoscalerd/sources/http"
	"github.com/autoscalerd/autoscalerd/targets/nomad"

	// Every kind an operator can write, so each kind's own checks are in the corpus.
	_ "github.com/autoscalerd/autoscalerd/notify"
	_ "github.com/autoscalerd/autoscalerd/sources/all"
	_ "github.com/autoscalerd/autoscalerd/targets/all"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err with the messages the code prints now")

// testEnv is the whole environment the corpus sees, so results do not depend on the
// machine: ${VAR} resolves only from here.
var testEnv = map[string]string{
	"AUTOSCALERD_TEST_TOKEN": "s3cret-token",
	"AUTOSCALERD_TEST_EMPTY": "",
	"QUEUE_DIR":              "/var/lib/queue",
}

func lookupTestEnv(k string) (string, bool) {
	v, ok := testEnv[k]
	return v, ok
}

// validate checks a file the way `autoscalerd validate` does (configs.Load compiling each
// policy on the way, policy.Compile, engine.Resolve) and returns the error it would print,
// or nil.
func validate(t *testing.T, path string) error {
	t.Helper()
	cfg, _, err := policy.Load(path, configs.Options{LookupEnv: lookupTestEnv})
	if err == nil {
		err = engine.Resolve(context.Background(), cfg).Err()
	}
	if err == nil {
		return nil
	}
	var errs configs.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%s: error is a %T, not configs.Errors, so it has no position: %v", path, err, err)
	}
	for _, e := range errs {
		if e.Pos.File == "" {
			t.Errorf("%s: error without a file name: %v", path, e)
		}
	}
	return err
}

// TestBadConfigs loads every testdata/bad/*.yaml, each holding one mistake, and compares
// what validate prints with the .err file next to it. Run with -update after changing a
// message, then read the diff as an operator would.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("../configs/testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 45 {
		t.Fatalf("only %d bad configs in testdata/bad; the corpus has at least 45", len(files))
	}
	// File names in messages read as `autoscalerd validate -c NAME.yaml` prints them.
	t.Chdir("../configs/testdata/bad")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			err := validate(t, name)
			if err == nil {
				t.Fatalf("%s loads without error; it should fail", name)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(name, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot:\n%s\nwant (%s):\n%s", name, got, golden, want)
			}
		})
	}
}

// TestGoodConfigs loads every testdata/good/*.yaml, which must be valid.
func TestGoodConfigs(t *testing.T) {
	files, err := filepath.Glob("../configs/testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no good configs in testdata/good")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			if err := validate(t, f); err != nil {
				t.Fatalf("%s:\n%v", f, err)
			}
		})
	}
}

// TestFullConfig checks what testdata/good/full.yaml means, not only that it loads:
// inheritance from defaults, ${VAR:-default}, a secret file, policy_dir order, schedules.
func TestFullConfig(t *testing.T) {
	cfg, err := configs.Load("../configs/testdata/good/full.yaml", configs.Options{LookupEnv: lookupTestEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.APIToken.Value(); got != "s3cret-from-file" {
		t.Errorf("api_token from secrets/api-token (relative to the file) = %q", got)
	}
	if cfg.StateDir != "/var/lib/autoscalerd" || cfg.Log.Level != "debug" {
		t.Errorf("${VAR:-default}: state_dir %q, log.level %q; want the defaults", cfg.StateDir, cfg.Log.Level)
	}
	var names []string
	byName := map[string]*configs.Policy{}
	for _, p := range cfg.Policies {
		names = append(names, p.Name+"/"+p.Target.Kind)
		byName[p.Name] = p
	}
	want := "orders/compose mailer/nomad reports/process invoices/swarm refunds/swarm"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("policies = %s, want %s (main file first, then policy_dir in name order)", got, want)
	}

	orders, mailer := byName["orders"], byName["mailer"]
	checks := []struct {
		what      string
		got, want any
	}{
		{"orders.interval (from defaults)", orders.Interval.D(), 10 * time.Second},
		{"orders.cooldown.up (from defaults)", orders.Cooldown.Up.D(), time.Minute},
		{"orders.step.up (from defaults)", orders.Step.Up.String(), "100%"},
		{"orders.on_error (from defaults)", orders.OnError.String(), "replicas: 2"},
		{"orders.queries.queued.timeout (defaults.timeout)", orders.Queries[0].Timeout.D(), 3 * time.Second},
		{"orders.queries.cpu.timeout (its own)", orders.Queries[1].Timeout.D(), 8 * time.Second},
		{"orders.queries.queued.http.url (${QUEUE_URL:-...})", orders.Queries[0].Config.(*httpsrc.Config).URL, "http://queue.internal:8080/stats"},
		{"orders.queries.queued.http.bearer_token", orders.Queries[0].Config.(*httpsrc.Config).BearerToken.Value(), "s3cret-token"},
		{"mailer.interval (its own)", mailer.Interval.D(), 30 * time.Second},
		{"mailer.cooldown.up (defaults; only down is overridden)", mailer.Cooldown.Up.D(), time.Minute},
		{"mailer.cooldown.down (its own)", mailer.Cooldown.Down.D(), 2 * time.Minute},
		{"mailer.on_error (its own: hold)", mailer.OnError.String(), "hold"},
		{"mailer.target.nomad.namespace", mailer.Target.Config.(*nomad.Config).Namespace, "default"},
		{"mailer.schedule[0].timezone", mailer.Schedule[0].Location.String(), "Europe/Berlin"},
		{"reports.interval (policy_dir file, from defaults)", byName["reports"].Interval.D(), 10 * time.Second},
		{"refunds.min (policy_dir list)", byName["refunds"].Min, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	// "0 30 7 * * MON-FRI" has a seconds field: 07:30:00 Berlin time on weekdays.
	berlin := mailer.Schedule[0].Location
	monday := time.Date(2026, 11, 23, 0, 0, 0, 0, berlin)
	if got, want := mailer.Schedule[0].Spec.Next(monday), time.Date(2026, 11, 23, 7, 30, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("schedule[0] next after %s = %s, want %s", monday, got, want)
	}
	if !mailer.Schedule[0].ActiveAt(time.Date(2026, 11, 23, 17, 29, 0, 0, berlin)) || mailer.Schedule[0].ActiveAt(time.Date(2026, 11, 23, 17, 31, 0, 0, berlin)) {
		t.Error("schedule[0] should be active for 10h from 07:30 Berlin time")
	}
	// @daily is midnight UTC when no time zone is given (Next works in its argument's zone):
	// Monday 00:00 in Berlin is Sunday 23:00 UTC, an hour before.
	if got, want := mailer.Schedule[1].Spec.Next(monday.In(mailer.Schedule[1].Location)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("schedule[1] (@daily) next after %s = %s, want %s", monday, got, want)
	}

	ps, err := policy.Compile(cfg)
	if err != nil || len(ps) != len(cfg.Policies) {
		t.Fatalf("compile: %d policies, %v", len(ps), err)
	}
}

// TestOverridePositions: a daemon setting given by flag or environment is reported as
// coming from there, not from a line of the file that says something else.
func TestOverridePositions(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		override map[string]string
		want     string
	}{
		{"listen from the environment", "listen: 127.0.0.1:9090\n", map[string]string{"listen": "0.0.0.0:9090"},
			`(flags or environment): listen: "0.0.0.0:9090" is not a loopback address: set api_token (or AUTOSCALERD_API_TOKEN) so that only its holders can pause, resume and reload`},
		{"token from the environment makes a public listen valid", "listen: 0.0.0.0:9090\n", map[string]string{"api_token": "t0ken"}, ""},
		{"listen in the file", "log: { level: info }\nlisten: 0.0.0.0:9090\n", nil,
			`test.yaml:2:9: listen: "0.0.0.0:9090" is not a loopback address: set api_token (or AUTOSCALERD_API_TOKEN) so that only its holders can pause, resume and reload`},
		{"scale_concurrency from a flag", "scale_concurrency: 2\n", map[string]string{"scale_concurrency": "0"},
			"(flags or environment): scale_concurrency: must be at least 1"},
		{"scale_concurrency not a number", "", map[string]string{"scale_concurrency": "four"},
			`(flags or environment): scale_concurrency: "four" is not a whole number`},
		{"log level from a flag", "", map[string]string{"log.level": "loud"},
			`(flags or environment): log.level: "loud" is not a log level (use debug, info, warn or error)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := configs.Parse("test.yaml", []byte(c.file), configs.Options{
				LookupEnv: lookupTestEnv,
				Override: func(k string) (string, bool) {
					v, ok := c.override[k]
					return v, ok
				},
			})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestYAMLErrorInLongFile: the misindented line is found in a long file too, where the
// enclosing block (policies:) starts thousands of lines above it.
func TestYAMLErrorInLongFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("policies:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - name: w%d\n    target:\n      process:\n        command: [/usr/local/bin/worker, %q]\n    max: 10\n    replicas: \"1\"\n", i, fmt.Sprint(i))
	}
	b.WriteString("  - name: last\n    max: 10\n   replicas: \"1\"\n")
	line := strings.Count(b.String(), "\n")
	_, err := configs.Parse("long.yaml", []byte(b.String()), configs.Options{LookupEnv: lookupTestEnv})
	want := fmt.Sprintf("long.yaml:%d:4: invalid YAML: did not find expected '-' indicator: check this line", line)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s...", err, want)
	}
}

// TestAllErrorsAtOnce: expression mistakes come out with the file's other mistakes (SPEC
// §1: all at once), but a policy whose own settings failed to decode is not compiled, so
// a query lost to a typo does not also show up as an unknown name.
func TestAllErrorsAtOnce(t *testing.T) {
	const file = `defaults:
  interval: 15
policies:
  - name: a
    target: { process: { command: [/bin/a] } }
    max: 3
    queries:
      queued: { file: { path: /q } }
    replicas: ceil(queud / 10)
  - name: b
    target: { process: { command: [/bin/b] } }
    max: 3
    queries:
      queued: { fiel: { path: /q } }
    replicas: ceil(queued / 10)
`
	_, _, err := policy.Parse("all.yaml", []byte(file), configs.Options{LookupEnv: lookupTestEnv})
	want := `all.yaml:2:13: defaults.interval: "15" is not a duration (use 15s)
all.yaml:9:20: policies[0].replicas: unknown name queud (did you mean "queued"?): the expression can use this policy's queries (queued), current, min and max
all.yaml:14:17: policies[1].queries.queued: unknown query kind "fiel" (want one of docker_stats, exec, file, hatchet, http, nats, postgres, prometheus, rabbitmq, redis, temporal) (did you mean "file"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
