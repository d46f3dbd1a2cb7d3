package compose

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// These tests run against both engines of testenv.Engines (Debian's 20.10 and Engine 29),
// with projects started by the python docker-compose 1.29 and by Compose v5.

// eachCompose runs test once per engine and compose CLI: engine20/compose1, ... .
func eachCompose(t *testing.T, test func(t *testing.T, cc *testenv.ComposeCLI)) {
	for _, e := range testenv.Engines(t) {
		for _, cc := range e.Composes {
			t.Run(e.Name+"/"+cc.Name, func(t *testing.T) {
				cc.NeedCompose(t)
				test(t, cc)
			})
		}
	}
}

// eachEngine runs test once per engine, with the compose CLI that usually goes with it:
// docker-compose 1.29 with Debian's 20.10, Compose v5 with Engine 29. Cases that do not
// depend on the compose CLI run once per engine only.
func eachEngine(t *testing.T, test func(t *testing.T, cc *testenv.ComposeCLI)) {
	for _, e := range testenv.Engines(t) {
		cc := e.UsualCompose()
		t.Run(e.Name, func(t *testing.T) {
			cc.NeedCompose(t)
			test(t, cc)
		})
	}
}

func projectName(prefix string) string {
	return fmt.Sprintf("%s%04d", prefix, rand.IntN(10000))
}

func newTarget(t *testing.T, e *testenv.Engine, project, service string) *Target {
	t.Helper()
	tg, err := New(&Config{Project: project, Service: service, StopTimeout: -1}, targets.Deps{Policy: "test", DockerHost: e.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.(*Target).Close(context.Background()) })
	return tg.(*Target)
}

func mustScale(t *testing.T, tg *Target, n int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := tg.Scale(ctx, n, targets.Reason{Policy: "test", Message: "test"}); err != nil {
		t.Fatalf("Scale(%d): %v", n, err)
	}
	took := time.Since(start)
	st, err := tg.Status(ctx)
	if err != nil {
		t.Fatalf("Status after Scale(%d): %v", n, err)
	}
	if st.Replicas != n {
		t.Fatalf("Status after Scale(%d): %d replicas", n, st.Replicas)
	}
	return took
}

// serviceContainers inspects every container of the service, lowest number first.
func serviceContainers(t *testing.T, c *client.Client, project, service string) []container.InspectResponse {
	t.Helper()
	ctx := context.Background()
	res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", labelProject+"="+project, labelService+"="+service)})
	if err != nil {
		t.Fatal(err)
	}
	var out []container.InspectResponse
	for _, s := range res.Items {
		ins, err := c.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ins.Container)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].Config.Labels[labelNumber])
		b, _ := strconv.Atoi(out[j].Config.Labels[labelNumber])
		return a < b
	})
	return out
}

// checkReplicas checks the invariants of a scaled service: wantRunning running
// containers (plus wantStopped stopped), unique numbers, names that match the numbers and
// cc's scheme, the template's config-hash, and every one listed by cc's `ps -a`.
func checkReplicas(t *testing.T, cc *testenv.ComposeCLI, dir, project string, wantRunning, wantStopped int) []container.InspectResponse {
	t.Helper()
	c, sep := cc.Engine().Client, cc.Sep
	cs := serviceContainers(t, c, project, "worker")
	running, stopped := 0, 0
	seen := map[string]bool{}
	hash := ""
	for _, ctr := range cs {
		num := ctr.Config.Labels[labelNumber]
		if seen[num] {
			t.Errorf("number %s used twice", num)
		}
		seen[num] = true
		if want := project + sep + "worker" + sep + num; trimSlash(ctr.Name) != want {
			t.Errorf("container %s has number %s; want name %s", ctr.Name, num, want)
		}
		if hash == "" {
			hash = ctr.Config.Labels["com.docker.compose.config-hash"]
		} else if h := ctr.Config.Labels["com.docker.compose.config-hash"]; h != hash {
			t.Errorf("%s: config-hash %s, want the template's %s", ctr.Name, h, hash)
		}
		if ctr.State.Running {
			running++
		} else {
			stopped++
		}
	}
	if running != wantRunning || stopped != wantStopped {
		t.Fatalf("%d running and %d stopped containers, want %d and %d", running, stopped, wantRunning, wantStopped)
	}
	ps := cc.Run(t, dir, project, "ps", "-a")
	for _, ctr := range cs {
		if !strings.Contains(ps, trimSlash(ctr.Name)) {
			t.Errorf("%s ps -a does not list %s:\n%s", cc.Name, ctr.Name, ps)
		}
	}
	return cs
}

func logsOf(t *testing.T, e *testenv.Engine, id string) string {
	t.Helper()
	return e.Docker(t, "logs", id)
}

func dockerExec(e *testenv.Engine, id string, args ...string) (string, error) {
	return e.DockerErr(append([]string{"exec", id}, args...)...)
}

// workerProject is the compose file of most tests: a worker with an anonymous volume, a
// network alias and a second network, and a probe to reach the workers from inside.
const workerProject = `version: "2.4"
services:
  worker:
    image: %[1]s
    stop_grace_period: 7s
    environment:
      ROLE: worker
    volumes:
      - /data
    networks:
      default:
        aliases: [jobs]
      back: {}
  probe:
    image: %[1]s
networks:
  back: {}
`

// startProject brings up workerProject with cc under a fresh project name and returns
// the engine client, the project's name and directory, and a target for its worker
// service.
func startProject(t *testing.T, cc *testenv.ComposeCLI, prefix string) (c *client.Client, project, dir string, tg *Target) {
	t.Helper()
	e := cc.Engine()
	c = e.Client
	img := e.WorkerImage(t)
	project = projectName(prefix)
	dir = cc.Project(t, project, fmt.Sprintf(workerProject, img))
	tg = newTarget(t, e, project, "worker")
	// The worker has an anonymous volume (/data): removed replicas take theirs along.
	tg.cfg.RemoveVolumes = true
	return c, project, dir, tg
}

// TestComposeScale drives a compose project 1→5→0→2, on each engine with each compose
// CLI, and checks what compose and the workers see.
func TestComposeScale(t *testing.T) { eachCompose(t, testScale) }

func testScale(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, project, dir, tg := startProject(t, cc, "asc")

	st, err := tg.Status(context.Background())
	if err != nil || st.Replicas != 1 {
		t.Fatalf("Status = %+v, %v; want 1 replica", st, err)
	}

	t.Logf("1→5 took %s", mustScale(t, tg, 5))
	cs := checkReplicas(t, cc, dir, project, 5, 0)
	tmpl := cs[0]
	hostnames := map[string]string{}
	volumes := map[string]string{}
	for _, ctr := range cs {
		if ctr.Image != tmpl.Image {
			t.Errorf("%s: image %s, want the template's %s", ctr.Name, ctr.Image, tmpl.Image)
		}
		if !containsAll(ctr.Config.Env, "ROLE=worker") {
			t.Errorf("%s: env %v lacks ROLE=worker", ctr.Name, ctr.Config.Env)
		}
		if prev, dup := hostnames[ctr.Config.Hostname]; dup {
			t.Errorf("%s and %s share hostname %s", prev, ctr.Name, ctr.Config.Hostname)
		}
		hostnames[ctr.Config.Hostname] = ctr.Name
		for _, m := range ctr.Mounts {
			if m.Destination == "/data" {
				if prev, dup := volumes[m.Name]; dup {
					t.Errorf("%s and %s share the anonymous volume %s", prev, ctr.Name, m.Name)
				}
				volumes[m.Name] = ctr.Name
			}
		}
		if len(ctr.NetworkSettings.Networks) != 2 {
			t.Errorf("%s: networks %v, want default and back", ctr.Name, keys(ctr.NetworkSettings.Networks))
		}
		for net, ep := range ctr.NetworkSettings.Networks {
			want := []string{"worker"}
			if strings.HasSuffix(net, "_default") {
				want = append(want, "jobs")
			}
			if !containsAll(ep.Aliases, want...) {
				t.Errorf("%s on %s: aliases %v, want %v among them", ctr.Name, net, ep.Aliases, want)
			}
		}
	}
	if len(volumes) != 5 {
		t.Errorf("want 5 distinct /data volumes, got %v", volumes)
	}

	// Another container of the project reaches the clones by the service name, the
	// configured alias, and a clone's own name.
	probe := serviceContainers(t, c, project, "probe")[0].ID
	cloneName := trimSlash(cs[4].Name)
	if out, err := dockerExec(e, probe, "/testworker", "get", "http://"+cloneName+":8080/"); err != nil || out != cs[4].Config.Hostname {
		t.Errorf("GET %s from probe = %q, %v; want hostname %s", cloneName, out, err, cs[4].Config.Hostname)
	}
	answered := map[string]bool{}
	for i := 0; i < 40 && len(answered) < 3; i++ {
		host := []string{"worker", "jobs"}[i%2]
		out, err := dockerExec(e, probe, "/testworker", "get", "http://"+host+":8080/")
		if err != nil {
			t.Fatalf("GET %s from probe: %v: %s", host, err, out)
		}
		if hostnames[out] == "" {
			t.Fatalf("GET %s answered %q, not one of the replicas' hostnames %v", host, out, hostnames)
		}
		answered[out] = true
	}
	if len(answered) < 3 {
		t.Errorf("the service name reached only %v of 5 replicas", answered)
	}

	// Every replica must stop on its stop signal within its grace period: exit code 0
	// from the worker's SIGTERM handler, not 137 from a SIGKILL.
	ectx, cancel := context.WithCancel(context.Background())
	defer cancel()
	died := c.Events(ectx, client.EventsListOptions{Filters: client.Filters{}.
		Add("type", "container").Add("event", "die").Add("label", labelProject+"="+project, labelService+"=worker")})
	time.Sleep(200 * time.Millisecond) // let the stream connect
	mustScale(t, tg, 0)
	exits := map[string]string{}
	for len(exits) < 5 {
		select {
		case m := <-died.Messages:
			exits[m.Actor.Attributes["name"]] = m.Actor.Attributes["exitCode"]
		case err := <-died.Err:
			t.Fatalf("events: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("saw %d replicas stop, want 5: %v", len(exits), exits)
		}
	}
	for name, code := range exits {
		if code != "0" {
			t.Errorf("%s exited with %s, want 0 (stopped by SIGTERM within its grace period)", name, code)
		}
	}
	cs = checkReplicas(t, cc, dir, project, 0, 1)
	// remove_volumes: the removed replicas' anonymous volumes are gone, the template's stays.
	for vol, owner := range volumes {
		_, err := c.VolumeInspect(context.Background(), vol, client.VolumeInspectOptions{})
		switch kept := err == nil; {
		case owner == tmpl.Name && !kept:
			t.Errorf("the template's volume %s was removed: %v", vol, err)
		case owner != tmpl.Name && kept:
			t.Errorf("volume %s of the removed %s is still there", vol, owner)
		}
	}
	if cs[0].ID != tmpl.ID {
		t.Errorf("kept %s as the template, want the lowest number %s", cs[0].Name, tmpl.Name)
	}
	if logs := logsOf(t, e, cs[0].ID); !strings.Contains(logs, "got SIGTERM") || !strings.Contains(logs, "stopped cleanly") {
		t.Errorf("template's logs show no graceful stop:\n%s", logs)
	}

	mustScale(t, tg, 2)
	cs = checkReplicas(t, cc, dir, project, 2, 0)
	if cs[0].ID != tmpl.ID {
		t.Errorf("scale-up from zero did not restart the template %s", tmpl.Name)
	}
	if got := cs[1].Config.Labels[labelNumber]; got != "2" {
		t.Errorf("the clone after scaling down has number %s, want 2 (numbers are reused from the top)", got)
	}

	// Compose takes the clone for one of its own: up with the same count keeps it.
	cc.Run(t, dir, project, "up", "-d", "--scale", "worker=2")
	after := checkReplicas(t, cc, dir, project, 2, 0)
	for i := range after {
		if after[i].ID != cs[i].ID {
			t.Errorf("%s up recreated %s", cc.Name, cs[i].Name)
		}
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestComposeRefuses: a service that cannot have two replicas is refused with the reason.
func TestComposeRefuses(t *testing.T) { eachEngine(t, testRefuses) }

func testRefuses(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	img := e.WorkerImage(t)
	project := projectName("ascref")
	port := testenv.FreePort(t)
	yml := fmt.Sprintf(`version: "2.4"
services:
  fixed:
    image: %[1]s
    ports: ["127.0.0.1:%[2]d:8080"]
  named:
    image: %[1]s
    container_name: %[3]s-the-one
  ephemeral:
    image: %[1]s
    ports: ["8080"]
`, img, port, project)
	cc.Project(t, project, yml)
	for _, tc := range []struct {
		service string
		wantErr string // "" = scales
	}{
		{"fixed", fmt.Sprintf("publishes container port 8080/tcp on fixed host port %d", port)},
		{"named", `is named "` + project + `-the-one" (container_name: in the compose file)`},
		{"ephemeral", ""},
	} {
		t.Run(tc.service, func(t *testing.T) {
			tg := newTarget(t, e, project, tc.service)
			err := tg.Scale(context.Background(), 2, targets.Reason{})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Scale: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Scale error = %v, want it to say %q", err, tc.wantErr)
			}
			st, err := tg.Status(context.Background())
			want := 2
			if tc.wantErr != "" {
				want = 1
			}
			if err != nil || st.Replicas != want {
				t.Fatalf("Status = %+v, %v; want %d replicas", st, err, want)
			}
			if tc.wantErr != "" {
				// Its one container can still be stopped and started again: no clone.
				mustScale(t, tg, 0)
				mustScale(t, tg, 1)
			}
		})
	}
}

// TestComposeEngineRestart restarts the engine in the middle of a scale-up: the target
// must come back, converge, and leave neither duplicate numbers nor orphans.
func TestComposeEngineRestart(t *testing.T) { eachEngine(t, testEngineRestart) }

func testEngineRestart(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, project, dir, tg := startProject(t, cc, "ascrst")
	tg.parallel = 2 // slower, so the restart lands in the middle

	// The third clone to start waits until the engine is down, so the restart lands in
	// the middle of the scale-up: some clones started, some created, some not yet.
	midway, engineDown := make(chan struct{}, 1), make(chan struct{})
	var mu sync.Mutex
	started := 0
	tg.beforeStart = func(string) {
		mu.Lock()
		started++
		n := started
		mu.Unlock()
		if n == 3 {
			midway <- struct{}{}
			select {
			case <-engineDown:
			case <-time.After(time.Minute):
			}
		}
	}
	changed := watch(t, tg)
	done := make(chan error, 1)
	go func() { done <- tg.Scale(context.Background(), 8, targets.Reason{}) }()
	select {
	case <-midway:
	case err := <-done:
		t.Fatalf("Scale finished before the restart: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("scale-up made no progress")
	}
	e.Restart(t, func() {
		// From here on, a change is reported only once the stream is back.
		for len(changed) > 0 {
			<-changed
		}
		close(engineDown)
		if err := <-done; err == nil {
			t.Error("Scale succeeded although the engine went down in its middle")
		} else {
			t.Logf("Scale during the restart failed as expected: %v", err)
		}
	})
	tg.beforeStart = nil
	// The event stream reconnects by itself and reports a change, since it missed events.
	waitChanged(t, changed, "the engine restart")

	// The engine's tick retries; so do we, until it converges.
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := tg.Scale(context.Background(), 8, targets.Reason{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence after the restart: %v", err)
		}
		t.Logf("retrying: %v", err)
		time.Sleep(time.Second)
	}
	checkReplicas(t, cc, dir, project, 8, 0)
	// Nothing else of the project lingers: only the 8 workers and the probe.
	res, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelProject+"="+project)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 9 {
		var names []string
		for _, s := range res.Items {
			names = append(names, s.Names[0]+" "+string(s.State))
		}
		t.Errorf("project has %d containers, want 8 workers and 1 probe: %v", len(res.Items), names)
	}
	// Every container the engine has that is named like a worker is one of them.
	all, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("^/" + project + cc.Sep + "worker" + cc.Sep)
	n := 0
	for _, s := range all.Items {
		if re.MatchString(s.Names[0]) {
			n++
		}
	}
	if n != 8 {
		t.Errorf("%d containers named like workers, want 8", n)
	}
}

// watch runs tg.Watch until the test ends and returns a channel that receives a value per
// reported change.
func watch(t *testing.T, w targets.Watcher) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return changed
}

func waitChanged(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no change reported after %s", what)
	}
}

// TestComposeWatch: someone runs `docker-compose up --scale` next to autoscalerd; the
// target notices at once.
func TestComposeWatch(t *testing.T) { eachEngine(t, testWatch) }

func testWatch(t *testing.T, cc *testenv.ComposeCLI) {
	_, project, dir, tg := startProject(t, cc, "ascw")
	changed := watch(t, tg)
	time.Sleep(300 * time.Millisecond) // let the event stream connect
	for len(changed) > 0 {
		<-changed
	}
	cc.Run(t, dir, project, "up", "-d", "--scale", "worker=3")
	waitChanged(t, changed, cc.Name+" up --scale worker=3")
	st, err := tg.Status(context.Background())
	if err != nil || st.Replicas != 3 {
		t.Fatalf("Status = %+v, %v; want the 3 replicas compose started", st, err)
	}
	// Our own clones and compose's coexist: scale on from compose's 3.
	mustScale(t, tg, 5)
	checkReplicas(t, cc, dir, project, 5, 0)
}

// TestComposeCrashLoop: replicas that crash and are restarted by the engine hold their
// slots; repeated scaling to the same count must not pile up clones.
func TestComposeCrashLoop(t *testing.T) { eachEngine(t, testCrashLoop) }

func testCrashLoop(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c := e.Client
	img := e.WorkerImage(t)
	project := projectName("asccrash")
	v2Project(t, e, project, "--restart", "always", img, "get", "http://127.0.0.1:1/")
	tg := newTarget(t, e, project, "worker")
	noops := 0
	for range 6 {
		err := tg.Scale(context.Background(), 2, targets.Reason{})
		switch {
		case errors.Is(err, targets.ErrNoop):
			noops++ // "wait for the engine's restarts", no cooldown
		case err != nil:
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if noops == 0 {
		t.Error("never told the engine the replicas are restarting (ErrNoop)")
	}
	if cs := serviceContainers(t, c, project, "worker"); len(cs) != 2 {
		t.Fatalf("%d containers after scaling a crash-looping service to 2 six times, want 2", len(cs))
	}
}

// v2Project lays out a project the way compose v2+ does, quicker than a compose CLI
// starts: a network and worker replica 1, named and labelled as compose names and labels
// them. runArgs end with the image and its arguments.
func v2Project(t *testing.T, e *testenv.Engine, project string, runArgs ...string) {
	t.Helper()
	net := project + "_default"
	run := func(args ...string) { t.Helper(); e.Docker(t, args...) }
	t.Cleanup(func() {
		out, _ := e.DockerErr("ps", "-aq", "--filter", "label="+labelProject+"="+project)
		if ids := strings.Fields(out); len(ids) > 0 {
			_, _ = e.DockerErr(append([]string{"rm", "-f"}, ids...)...)
		}
		_, _ = e.DockerErr("network", "rm", net)
	})
	run("network", "create", "--label", "com.docker.compose.network=default", "--label", labelProject+"="+project, net)
	run(append([]string{"run", "-d", "--name", project + "-worker-1", "--network", net,
		"--network-alias", project + "-worker-1", "--network-alias", "worker",
		"--label", labelProject + "=" + project, "--label", labelService + "=worker",
		"--label", labelOneoff + "=False", "--label", labelNumber + "=1",
		"--label", "com.docker.compose.config-hash=v2hash"}, runArgs...)...)
}

// TestComposeNameTaken: a container outside the service already has the next replica's
// name; the clone takes the number after it.
func TestComposeNameTaken(t *testing.T) { eachEngine(t, testNameTaken) }

func testNameTaken(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c := e.Client
	img := e.WorkerImage(t)
	project := projectName("asctaken")
	v2Project(t, e, project, img)
	squatter := project + "-worker-2"
	e.Docker(t, "create", "--name", squatter, img)
	t.Cleanup(func() { _, _ = e.DockerErr("rm", "-f", squatter) })

	tg := newTarget(t, e, project, "worker")
	mustScale(t, tg, 2)
	cs := serviceContainers(t, c, project, "worker")
	if got := trimSlash(cs[1].Name); got != project+"-worker-3" || cs[1].Config.Labels[labelNumber] != "3" {
		t.Fatalf("clone is %s number %s, want %s-worker-3 number 3", got, cs[1].Config.Labels[labelNumber], project)
	}
}

// TestComposeHealthAndStopSignal: on each engine, clones keep the service's healthcheck
// and stop signal; Ready counts only healthy replicas, and a scale-down stops each clone
// with the service's stop signal (SIGINT here) within its grace period.
func TestComposeHealthAndStopSignal(t *testing.T) { eachEngine(t, testHealthAndStopSignal) }

func testHealthAndStopSignal(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c := e.Client
	img := e.WorkerImage(t)
	project := projectName("aschealth")
	cc.Project(t, project, fmt.Sprintf(`services:
  worker:
    image: %[1]s
    stop_signal: SIGINT
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testworker", "get", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 2
  sick:
    image: %[1]s
    healthcheck:
      test: ["CMD", "/testworker", "get", "http://127.0.0.1:1/"]
      interval: 1s
      timeout: 2s
      retries: 1
`, img))
	ctx := context.Background()
	waitStatus := func(tg *Target, replicas, ready int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := tg.Status(ctx)
			if err == nil && st.Replicas == replicas && st.Ready == ready {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Status = %+v, %v; want %d replicas, %d ready", tg, st, err, replicas, ready)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	tg := newTarget(t, e, project, "worker")
	mustScale(t, tg, 3)
	waitStatus(tg, 3, 3)
	for _, ctr := range serviceContainers(t, c, project, "worker") {
		if ctr.Config.StopSignal != "SIGINT" || ctr.Config.Healthcheck == nil || len(ctr.Config.Healthcheck.Test) == 0 {
			t.Errorf("%s: stop signal %q, healthcheck %+v; want the service's", ctr.Name, ctr.Config.StopSignal, ctr.Config.Healthcheck)
		}
	}
	sick := newTarget(t, e, project, "sick")
	mustScale(t, sick, 2)
	waitStatus(sick, 2, 0)

	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	died := c.Events(ectx, client.EventsListOptions{Filters: client.Filters{}.
		Add("type", "container").Add("event", "kill", "die").Add("label", labelProject+"="+project, labelService+"=worker")})
	time.Sleep(200 * time.Millisecond) // let the stream connect
	start := time.Now()
	mustScale(t, tg, 1)
	for dead := 0; dead < 2; {
		select {
		case m := <-died.Messages:
			name := m.Actor.Attributes["name"]
			switch m.Action {
			case "kill":
				// The engine reports the signal's number: SIGINT is 2, SIGTERM 15.
				if sig := m.Actor.Attributes["signal"]; sig != "2" {
					t.Errorf("%s got signal %s, want the service's stop signal SIGINT (2)", name, sig)
				}
			case "die":
				dead++
				if code := m.Actor.Attributes["exitCode"]; code != "0" {
					t.Errorf("%s exited with %s, want 0 (stopped within its grace period)", name, code)
				}
			}
		case err := <-died.Err:
			t.Fatalf("events: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("the two clones did not stop")
		}
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("scale-down took %s: the stop signal was not the one the worker handles", took)
	}
}
