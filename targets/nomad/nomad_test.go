package nomad

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedNomad()
	os.Exit(code)
}

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

// parse loads a config whose only policy drives the given nomad target YAML (flow style).
func parse(t *testing.T, targets ...string) (*configs.Config, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString("policies:\n")
	for i, tgt := range targets {
		fmt.Fprintf(&b, "  - name: p%d\n    target:\n      nomad: %s\n    max: 5\n    replicas: \"2\"\n", i, tgt)
	}
	return configs.Parse("autoscalerd.yaml", []byte(b.String()), configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
}

func TestConfig(t *testing.T) {
	cfg, err := parse(t, `{ job: web, group: api }`)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Policies[0].Target.Config.(*Config)
	if got.Namespace != "default" || got.Job != "web" || got.Group != "api" || got.Address != "" {
		t.Errorf("defaults: got %+v", got)
	}

	sample, ok := targets.Sample("nomad")
	if !ok || !strings.Contains(sample, "nomad:") {
		t.Errorf("Sample(nomad) = %q, %v", sample, ok)
	}

	bad := []struct {
		name    string
		targets []string
		want    string
	}{
		{"group missing", []string{`{ job: web }`}, `autoscalerd.yaml:4:14: policies[0].target.nomad: missing required key "group"`},
		{"empty job", []string{`{ job: "", group: api }`}, `policies[0].target.nomad.job: must not be empty`},
		{"empty namespace", []string{`{ job: web, group: api, namespace: "" }`}, `policies[0].target.nomad.namespace: must not be empty`},
		{"unknown key", []string{`{ job: web, group: api, count: 3 }`}, `policies[0].target.nomad`},
		{"bad scheme", []string{`{ job: web, group: api, address: "ftp://nomad:4646" }`}, `policies[0].target.nomad.address: "ftp://nomad:4646" is not an http://, https:// or unix:// address`},
		{"credentials in address", []string{`{ job: web, group: api, address: "http://admin:hunter2@nomad:4646" }`}, `carries credentials; use token`},
		{"same group twice", []string{`{ job: web, group: api }`, `{ job: web, group: api, namespace: default }`}, `policy "p1" drives the same target as policy "p0"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.targets...)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}

	// The same job/group in another namespace or cluster is another target.
	if _, err := parse(t, `{ job: web, group: api }`, `{ job: web, group: api, namespace: batch }`, `{ job: web, group: api, address: "http://other:4646" }`); err != nil {
		t.Errorf("distinct targets refused: %v", err)
	}
}

// TestUnreachable: errors name the target and never show the token.
func TestUnreachable(t *testing.T) {
	const token = "s3cr3t-nomad-token"
	cfg := &Config{Job: "web", Group: "api", Namespace: "default", Address: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), Token: configs.NewSecret(token)}
	tgt := build(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := tgt.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), `nomad: job "web" group "api"`) {
		t.Errorf("Status error = %v, want it to name the job and group", err)
	}
	err2 := tgt.Scale(ctx, 3, targets.Reason{Policy: "web", Message: "test"})
	for _, e := range []error{err, err2} {
		if e != nil && strings.Contains(e.Error(), token) {
			t.Errorf("error shows the token: %v", e)
		}
	}
	if err2 == nil || errors.Is(err2, targets.ErrNoop) {
		t.Errorf("Scale error = %v, want a plain error", err2)
	}
}

func build(t *testing.T, cfg *Config) targets.Target {
	t.Helper()
	tgt, err := New(cfg, targets.Deps{Policy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tgt.(targets.Closer).Close(context.Background()) })
	return tgt
}

var jobSeq atomic.Int32

// sleepJob is a service job with one group "api" of count raw_exec sleepers. With
// update == nil it has no deployments (max_parallel 0), so every scale goes through.
func sleepJob(t *testing.T, count int, update *api.UpdateStrategy) *api.Job {
	id := fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), jobSeq.Add(1))
	job := api.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	if update == nil {
		update = &api.UpdateStrategy{MaxParallel: new(0)}
	}
	job.Update = update
	task := api.NewTask("sleep", "raw_exec").
		SetConfig("command", "/bin/sleep").
		SetConfig("args", []string{"3600"})
	task.Resources = &api.Resources{CPU: new(20), MemoryMB: new(16)}
	task.KillTimeout = new(time.Second)
	job.AddTaskGroup(api.NewTaskGroup("api", count).AddTask(task))
	return job
}

// register runs job on the agent and purges it when the test ends.
func register(t *testing.T, c *api.Client, job *api.Job) {
	t.Helper()
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register %s: %v", *job.ID, err)
	}
	t.Cleanup(func() {
		if _, _, err := c.Jobs().Deregister(*job.ID, true, nil); err != nil {
			t.Logf("purge %s: %v", *job.ID, err)
		}
	})
}

// waitStatus polls Status until it reports want (desired and running) or fails.
func waitStatus(t *testing.T, tgt targets.Target, want targets.Status, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last targets.Status
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = tgt.Status(context.Background())
		if lastErr == nil && last == want {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("status did not become %+v within %s: last %+v, %v", want, within, last, lastErr)
}

func agent(t *testing.T) (*testenv.NomadAgent, *api.Client) {
	t.Helper()
	a := testenv.SharedNomad(t)
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

func targetFor(t *testing.T, a *testenv.NomadAgent, job *api.Job) targets.Target {
	return build(t, &Config{Job: *job.ID, Group: "api", Namespace: "default", Address: a.Addr})
}

func TestScaleUpAndDown(t *testing.T) {
	a, c := agent(t)
	job := sleepJob(t, 1, nil)
	register(t, c, job)
	tgt := targetFor(t, a, job)
	waitStatus(t, tgt, targets.Status{Replicas: 1, Ready: 1}, 30*time.Second)

	for _, n := range []int{4, 1} {
		if err := tgt.Scale(context.Background(), n, targets.Reason{Policy: "web", Message: fmt.Sprintf("queued=%d → scale", n*100)}); err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
		// The desired count changes at once; running allocations follow.
		st, err := tgt.Status(context.Background())
		if err != nil || st.Replicas != n {
			t.Fatalf("right after scaling to %d: %+v, %v", n, st, err)
		}
		waitStatus(t, tgt, targets.Status{Replicas: n, Ready: n}, 60*time.Second)
	}

	// Every action is a scaling event naming the policy and its reason.
	st, _, err := c.Jobs().ScaleStatus(*job.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := st.TaskGroups["api"].Events
	if len(events) != 2 {
		t.Fatalf("want 2 scaling events, got %d: %+v", len(events), events)
	}
	for _, e := range events {
		if !strings.Contains(e.Message, `autoscalerd policy "web": queued=`) || e.Meta[MetaPolicy] != "web" {
			t.Errorf("event message %q, meta %v: want the policy and reason", e.Message, e.Meta)
		}
	}
}

func TestLastScaled(t *testing.T) {
	a, c := agent(t)
	job := sleepJob(t, 1, nil)
	register(t, c, job)
	tgt := targetFor(t, a, job)
	hist := tgt.(targets.Historian)

	if _, ok, err := hist.LastScaled(context.Background()); err != nil || ok {
		t.Fatalf("before any scaling: ok=%v err=%v, want none", ok, err)
	}

	steps := []struct{ from, to int }{{1, 3}, {3, 2}}
	var before time.Time
	for _, s := range steps {
		before = time.Now()
		if err := tgt.Scale(context.Background(), s.to, targets.Reason{Policy: "web", Message: fmt.Sprintf("to %d", s.to)}); err != nil {
			t.Fatal(err)
		}
	}
	// An error event (another autoscaler reporting a failure) is not an action.
	if _, _, err := c.Jobs().Scale(*job.ID, "api", nil, "could not reach metrics", true, nil, nil); err != nil {
		t.Fatal(err)
	}
	last, ok, err := hist.LastScaled(context.Background())
	if err != nil || !ok {
		t.Fatalf("LastScaled: ok=%v err=%v", ok, err)
	}
	if last.From != 3 || last.To != 2 || last.Message != `autoscalerd policy "web": to 2` {
		t.Errorf("LastScaled = %+v, want 3→2 with its message", last)
	}
	if d := last.At.Sub(before); d < -time.Second || d > 5*time.Second {
		t.Errorf("LastScaled.At = %s, want about %s", last.At, before)
	}
}

func TestActiveDeploymentIsNoop(t *testing.T) {
	a, c := agent(t)
	// The deployment of the first version stays active: allocations only count as healthy
	// after min_healthy_time, far longer than the test.
	job := sleepJob(t, 1, &api.UpdateStrategy{
		MaxParallel:      new(1),
		HealthCheck:      new("task_states"),
		MinHealthyTime:   new(5 * time.Minute),
		HealthyDeadline:  new(10 * time.Minute),
		ProgressDeadline: new(15 * time.Minute),
	})
	register(t, c, job)
	tgt := targetFor(t, a, job)

	// Wait until the deployment exists (the scheduler creates it with the first placement).
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, _, err := c.Jobs().LatestDeployment(*job.ID, nil)
		if err == nil && d != nil && d.Status == api.DeploymentStatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running deployment: %+v, %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	err := tgt.Scale(context.Background(), 3, targets.Reason{Policy: "web", Message: "up"})
	if !errors.Is(err, targets.ErrNoop) {
		t.Fatalf("Scale during a deployment = %v, want ErrNoop", err)
	}
	if want := `nomad: job "` + *job.ID + `" group "api": no-op: scaling blocked by the job's active deployment`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	st, err := tgt.Status(context.Background())
	if err != nil || st.Replicas != 1 {
		t.Errorf("after the blocked scale: %+v, %v; want desired 1", st, err)
	}
}

func TestNotFound(t *testing.T) {
	a, c := agent(t)
	job := sleepJob(t, 1, nil)
	register(t, c, job)

	cases := []struct {
		name, job, group string
		want             string
	}{
		{"job", "no-such-job", "api", `nomad: job "no-such-job" group "api": job not found in namespace "default"`},
		{"group", *job.ID, "workers", `nomad: job "` + *job.ID + `" group "workers": group not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tgt := build(t, &Config{Job: tc.job, Group: tc.group, Namespace: "default", Address: a.Addr})
			ctx := context.Background()
			_, statusErr := tgt.Status(ctx)
			scaleErr := tgt.Scale(ctx, 2, targets.Reason{Policy: "web"})
			_, _, histErr := tgt.(targets.Historian).LastScaled(ctx)
			for what, err := range map[string]error{"Status": statusErr, "Scale": scaleErr, "LastScaled": histErr} {
				if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("%s: %v\nwant ErrNotFound starting with %s", what, err, tc.want)
				}
				if errors.Is(err, targets.ErrNoop) {
					t.Errorf("%s: a missing job is not a no-op", what)
				}
			}
		})
	}
}

// TestWatch: a scale by someone else asks for an early evaluation; our own does not.
func TestWatch(t *testing.T) {
	a, c := agent(t)
	job := sleepJob(t, 1, nil)
	register(t, c, job)
	tgt := targetFor(t, a, job)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 10)
	watching := make(chan error, 1)
	go func() { watching <- tgt.(targets.Watcher).Watch(ctx, func() { changed <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-watching; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(time.Second) // let Watch see the initial count

	if err := tgt.Scale(context.Background(), 2, targets.Reason{Policy: "web", Message: "ours"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Fatal("our own scale was reported as an outside change")
	case <-time.After(2 * time.Second):
	}

	if _, _, err := c.Jobs().Scale(*job.ID, "api", new(3), "an operator", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("an outside scale was not noticed")
	}
}

// TestStoppedJob: a stopped job is not scaled (that would only rewrite its count), but its
// scaling events still date the last action.
func TestStoppedJob(t *testing.T) {
	a, c := agent(t)
	job := sleepJob(t, 1, nil)
	register(t, c, job)
	tgt := targetFor(t, a, job)
	if err := tgt.Scale(context.Background(), 2, targets.Reason{Policy: "web", Message: "up"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Jobs().Deregister(*job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err := tgt.Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the job is stopped") {
		t.Errorf("Status of a stopped job: %v", err)
	}
	last, ok, err := tgt.(targets.Historian).LastScaled(context.Background())
	if err != nil || !ok || last.To != 2 {
		t.Errorf("LastScaled of a stopped job: %+v, %v, %v", last, ok, err)
	}
}
