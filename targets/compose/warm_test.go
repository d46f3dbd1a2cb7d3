package compose

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// poolTarget builds a target for project's worker service with a warm pool.
func poolTarget(t *testing.T, e *testenv.Engine, cfg *Config, policyMax int) *Target {
	t.Helper()
	tg, err := New(cfg, targets.Deps{Policy: "test", DockerHost: e.Host, MaxReplicas: policyMax, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.(*Target).Close(context.Background()) })
	return tg.(*Target)
}

// byState lists the service's containers in each state, by ID.
func byState(t *testing.T, c *client.Client, project string) map[container.ContainerState][]string {
	t.Helper()
	out := map[container.ContainerState][]string{}
	for _, ctr := range serviceContainers(t, c, project, "worker") {
		out[container.ContainerState(ctr.State.Status)] = append(out[container.ContainerState(ctr.State.Status)], ctr.ID)
	}
	return out
}

// waitPool waits until the pool holds members members and nothing is being made.
func waitPool(t *testing.T, tg *Target, c *client.Client, project string, state container.ContainerState, members int) []string {
	t.Helper()
	var ids []string
	// Generous: each member's start-up, healthcheck and settle run on a loaded engine.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		tg.kickPool()
		info := tg.Pool()
		all := byState(t, c, project)
		ids = all[state]
		if info.Members == members && info.Warming == 0 && len(ids) == members {
			return ids
		}
		if time.Now().After(deadline) {
			counts := map[container.ContainerState]int{}
			for st, ids := range all {
				counts[st] = len(ids)
			}
			t.Fatalf("no pool of %d %s members within 3m: pool %+v, containers by state %v", members, state, info, counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestComposeWarmPool: a pool of 3 paused members is made beside the running replica and
// listed by compose; a scale-up hands out exactly those containers, unpaused, and the
// pool is refilled within the policy's max; a restarted target finds its pool; after a
// `compose up -d` that changes the service's configuration, the members built from the old
// one are replaced, never handed out.
func TestComposeWarmPool(t *testing.T) { eachEngine(t, testWarmPool) }

func testWarmPool(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, project, dir, plain := startProject(t, cc, "ascwarm")
	plain.Close(context.Background())
	cfg := &Config{Project: project, Service: "worker", StopTimeout: -1, RemoveVolumes: true, Warm: &warm.Config{Size: 3}}
	tg := poolTarget(t, e, cfg, 6)
	ctx := context.Background()

	if st, err := tg.Status(ctx); err != nil || st.Replicas != 1 {
		t.Fatalf("Status: %+v, %v; want 1 replica", st, err)
	}
	members := waitPool(t, tg, c, project, container.StatePaused, 3)
	if st, _ := tg.Status(ctx); st.Replicas != 1 {
		t.Fatalf("with the pool full, Status counts %d replicas, want 1: members are not capacity", st.Replicas)
	}
	ps := cc.Run(t, dir, project, "ps", "-a")
	for _, id := range members {
		ins, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ps, trimSlash(ins.Container.Name)) {
			t.Errorf("%s ps -a does not list pool member %s:\n%s", cc.Name, ins.Container.Name, ps)
		}
	}
	checkReplicas(t, cc, dir, project, 4, 0) // unique numbers, compose's names and config-hash (a paused container counts as running)

	// 1→4 takes the three members, the same containers, now running.
	took := mustScale(t, tg, 4)
	running := byState(t, c, project)[container.StateRunning]
	for _, id := range members {
		if !slices.Contains(running, id) {
			t.Errorf("pool member %.12s is not among the running replicas after the scale-up", id)
		}
	}
	if info := tg.Pool(); info.HandedOut != 3 {
		t.Errorf("pool info after the scale-up: %+v, want 3 handed out", info)
	}
	t.Logf("%s: 1→4 from a pool of 3 took %s", e.Name, took)
	// Refilled to what the policy's max (6) leaves: 2.
	waitPool(t, tg, c, project, container.StatePaused, 2)
	if info := tg.Pool(); info.Want != 2 {
		t.Errorf("pool want with 4 running and max 6 = %d, want 2", info.Want)
	}

	// 4→6: the two members and no clone.
	before := len(serviceContainers(t, c, project, "worker"))
	mustScale(t, tg, 6)
	if after := len(serviceContainers(t, c, project, "worker")); after != before {
		t.Errorf("4→6 with 2 members made %d containers; want none (the members)", after-before)
	}
	// At the max the pool holds nothing; back at 2 it is refilled to 3.
	mustScale(t, tg, 2)
	waitPool(t, tg, c, project, container.StatePaused, 3)
	checkReplicas(t, cc, dir, project, 5, 0)

	// A restarted daemon finds its pool: the same members, nothing made.
	members = byState(t, c, project)[container.StatePaused]
	tg.Close(ctx)
	tg = poolTarget(t, e, cfg, 6)
	if st, err := tg.Status(ctx); err != nil || st.Replicas != 2 {
		t.Fatalf("Status of the restarted target: %+v, %v; want 2", st, err)
	}
	again := waitPool(t, tg, c, project, container.StatePaused, 3)
	slices.Sort(members)
	slices.Sort(again)
	if !slices.Equal(members, again) {
		t.Errorf("the restarted target's pool is %.12s, want the members it had, %.12s", again, members)
	}

	// `compose up -d` after a change of the service's configuration recreates the running
	// replicas (and whatever compose makes of the paused ones); the members built from the
	// old configuration are replaced, and the next scale-up hands out only new ones.
	compose := filepath.Join(dir, "docker-compose.yml")
	b, err := os.ReadFile(compose)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compose, []byte(strings.Replace(string(b), "ROLE: worker", "ROLE: worker2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	stateCounts := func() string {
		var out []string
		for st, ids := range byState(t, c, project) {
			out = append(out, fmt.Sprintf("%s=%d", st, len(ids)))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	beforeUp := stateCounts()
	cc.Run(t, dir, project, "up", "-d", "--scale", "worker=2")
	t.Logf("%s up -d --scale worker=2 with a changed configuration: before %s, after %s", cc.Name, beforeUp, stateCounts())
	var hash string
	waitUntil(t, "the pool made from the new configuration", 2*time.Minute, func() bool {
		if err := tg.Scale(ctx, 2, targets.Reason{}); err != nil {
			t.Logf("Scale(2): %v", err)
			return false
		}
		tg.kickPool()
		cs := serviceContainers(t, c, project, "worker")
		hash = ""
		paused, runningNew := 0, 0
		for _, ctr := range cs {
			if ctr.State.Running && !ctr.State.Paused && slices.Contains(ctr.Config.Env, "ROLE=worker2") {
				hash = ctr.Config.Labels[labelConfigHash]
				runningNew++
			}
		}
		for _, ctr := range cs {
			if ctr.State.Paused {
				if ctr.Config.Labels[labelConfigHash] != hash {
					return false
				}
				paused++
			}
		}
		info := tg.Pool()
		return runningNew == 2 && paused == 3 && info.Members == 3 && info.Warming == 0
	})
	if info := tg.Pool(); info.Replaced == 0 && info.HandedOut == 0 {
		t.Logf("no member needed replacing (compose removed or recreated them itself): %+v", info)
	}
	mustScale(t, tg, 5)
	for _, ctr := range serviceContainers(t, c, project, "worker") {
		if ctr.State.Running && ctr.Config.Labels[labelConfigHash] != hash {
			t.Errorf("%s runs with config-hash %s, want the new %s: a member from the old configuration was handed out", ctr.Name, ctr.Config.Labels[labelConfigHash], hash)
		}
	}
	waitPool(t, tg, c, project, container.StatePaused, 1)
	checkReplicas(t, cc, dir, project, 6, 0)
}

// TestComposeWarmPoolStopped: a stopped pool is created containers, never started, that
// a scale-up starts; scale-ins park replicas back (reuse_on_scale_in) up to max_size.
func TestComposeWarmPoolStopped(t *testing.T) { eachEngine(t, testWarmPoolStopped) }

func testWarmPoolStopped(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, project, dir, plain := startProject(t, cc, "ascwarms")
	plain.Close(context.Background())
	cfg := &Config{Project: project, Service: "worker", StopTimeout: -1, RemoveVolumes: true,
		Warm: &warm.Config{Size: 2, State: warm.Stopped, ReuseOnScaleIn: true, MaxSize: 3}}
	tg := poolTarget(t, e, cfg, 10)
	ctx := context.Background()
	if _, err := tg.Status(ctx); err != nil {
		t.Fatal(err)
	}
	members := waitPool(t, tg, c, project, container.StateCreated, 2)
	mustScale(t, tg, 3)
	running := byState(t, c, project)[container.StateRunning]
	for _, id := range members {
		if !slices.Contains(running, id) {
			t.Errorf("stopped member %.12s was not started by the scale-up", id)
		}
	}
	waitPool(t, tg, c, project, container.StateCreated, 2)
	// 3→1 parks one (max_size 3 with 2 members), removes the other.
	mustScale(t, tg, 1)
	st := byState(t, c, project)
	if len(st[container.StateExited])+len(st[container.StateCreated]) != 3 || len(st[container.StateRunning]) != 1 {
		t.Fatalf("after 3→1 with reuse_on_scale_in: %d running, %d created, %d exited; want 1 running and 3 in the pool", len(st[container.StateRunning]), len(st[container.StateCreated]), len(st[container.StateExited]))
	}
	if info := tg.Pool(); info.Parked != 1 {
		t.Errorf("pool info: %+v, want 1 parked", info)
	}
	checkReplicas(t, cc, dir, project, 1, 3)
}

// TestSplitPool: members built from another image or configuration than the running
// replicas are stale; in-flight containers are in no list; the want respects the max.
func TestSplitPool(t *testing.T) {
	p := newPool(&warm.Config{Size: 4}, 5)
	p.inFlight["w-6"] = true
	run := func(name, image, hash string) replica {
		return replica{name: name, state: container.StateRunning, status: "Up 1 minute", image: image, hash: hash}
	}
	paused := func(name, image, hash string) replica {
		return replica{name: name, state: container.StatePaused, image: image, hash: hash}
	}
	members, stale, rest := p.splitLocked([]replica{
		run("w-1", "img2", "h2"), run("w-2", "img2", "h2"),
		paused("w-3", "img2", "h2"), paused("w-4", "img1", "h2"), paused("w-5", "img2", "h1"), paused("w-6", "img2", "h2"),
	})
	names := func(rs []replica) (out []string) {
		for _, r := range rs {
			out = append(out, r.name)
		}
		return out
	}
	if got := names(members); !slices.Equal(got, []string{"w-3"}) {
		t.Errorf("members %v, want [w-3]", got)
	}
	if got := names(stale); !slices.Equal(got, []string{"w-4", "w-5"}) {
		t.Errorf("stale %v, want [w-4 w-5] (another image, another config-hash)", got)
	}
	if got := names(rest); !slices.Equal(got, []string{"w-1", "w-2"}) {
		t.Errorf("rest %v, want the running [w-1 w-2]", got)
	}
	if p.info.Want != 3 {
		t.Errorf("want %d with 2 running, size 4 and max 5; want 3", p.info.Want)
	}
}

// TestComposeWarmPoolJobs: job workers from a Postgres task table with a drain block
// (busy on /busy, SIGTSTP quiet, SIGCONT resume). Members are made while jobs wait: each
// is paused only once it is quiet and idle, so no member is frozen holding a job; handed
// out, they are resumed and take jobs; a scale-in drains and parks an idle replica back
// in the pool (reuse_on_scale_in), the same container. No job is cut short or run twice.
func TestComposeWarmPoolJobs(t *testing.T) { eachEngine(t, testWarmPoolJobs) }

func testWarmPoolJobs(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, pg, project := startJobWorkers(t, cc)
	cfg := jobsConfig(project, time.Minute)
	cfg.Warm = &warm.Config{Size: 2, ReuseOnScaleIn: true, MaxSize: 3}
	tg := jobsTarget(t, e, cfg, t.TempDir())
	t.Cleanup(func() { tg.Close(context.Background()) })
	ctx := context.Background()

	const job = 1500 * time.Millisecond
	pg.Exec(t, fmt.Sprintf("INSERT INTO tasks (duration_ms) SELECT %d FROM generate_series(1, 12)", job/time.Millisecond))
	if _, err := tg.Status(ctx); err != nil {
		t.Fatal(err)
	}
	members := waitPool(t, tg, c, project, container.StatePaused, 2)
	memberHost := map[string]bool{}
	for _, id := range members {
		memberHost[id[:12]] = true
	}
	// A paused member holds no job: every job a member took while it warmed up is done.
	for _, r := range pg.JobRuns(t) {
		if memberHost[hostOf(r.Worker)] && r.Finished == nil {
			t.Errorf("task %d is held by pool member %s, frozen mid-job", r.Task, hostOf(r.Worker))
		}
	}
	took := mustScale(t, tg, 3)
	t.Logf("%s: 1→3 from the pool took %s", e.Name, took)
	waitUntil(t, "the handed-out members take jobs", 20*time.Second, func() bool {
		took := map[string]bool{}
		for _, r := range pg.JobRuns(t) {
			if memberHost[hostOf(r.Worker)] && r.Started.After(time.Now().Add(-10*time.Second)) {
				took[hostOf(r.Worker)] = true
			}
		}
		return len(took) == 2
	})
	waitUntil(t, "every job done", 60*time.Second, func() bool {
		for _, r := range pg.JobRuns(t) {
			if r.Status != "done" {
				return false
			}
		}
		return len(pg.JobRuns(t)) >= 12
	})
	waitPool(t, tg, c, project, container.StatePaused, 2)

	// 3→1: the two drained (idle) replicas: one is parked (max_size 3, 2 members), one removed.
	running := byState(t, c, project)[container.StateRunning]
	mustScale(t, tg, 1)
	waitUntil(t, "the drains over", 30*time.Second, func() bool {
		for _, d := range tg.Drains() {
			if !d.State.Over() {
				return false
			}
		}
		return tg.Pool().Parked == 1
	})
	paused := byState(t, c, project)[container.StatePaused]
	parked := 0
	for _, id := range paused {
		if slices.Contains(running, id) {
			parked++
		}
	}
	if parked != 1 || len(paused) != 3 {
		t.Errorf("after 3→1: %d paused, %d of them replicas that ran; want 3 and 1 parked", len(paused), parked)
	}
	seen := map[int64]int{}
	for _, r := range pg.JobRuns(t) {
		seen[r.Task]++
		if r.Finished == nil {
			t.Errorf("task %d was cut short on %s", r.Task, r.Worker)
		}
	}
	for task, n := range seen {
		if n != 1 {
			t.Errorf("task %d ran %d times", task, n)
		}
	}
}
