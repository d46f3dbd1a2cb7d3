package compose

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
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

// These tests run against a real engine (scripts/start-dockerd.sh) and projects started
// with the Debian docker-compose v1 CLI.

func projectName(prefix string) string {
	return fmt.Sprintf("%s%04d", prefix, rand.IntN(10000))
}

func newTarget(t *testing.T, project, service string) *Target {
	t.Helper()
	tg, err := New(&Config{Project: project, Service: service, StopTimeout: -1}, targets.Deps{Policy: "test"})
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
// the scheme, the template's config-hash, and every one listed by `docker-compose ps`.
func checkReplicas(t *testing.T, c *client.Client, dir, project, sep string, wantRunning, wantStopped int) []container.InspectResponse {
	t.Helper()
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
	ps := testenv.Compose(t, dir, project, "ps")
	for _, ctr := range cs {
		if !strings.Contains(ps, trimSlash(ctr.Name)) {
			t.Errorf("docker-compose ps does not list %s:\n%s", ctr.Name, ps)
		}
	}
	return cs
}

func logsOf(t *testing.T, id string) string {
	t.Helper()
	out, err := exec.Command("docker", "logs", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs %s: %v\n%s", id, err, out)
	}
	return string(out)
}

func dockerExec(t *testing.T, id string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"exec", id}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

const composeV1 = `version: "2.4"
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

// startV1 brings up composeV1 with docker-compose v1 under a fresh project name and
// returns the engine client, the project's name and directory, and a target for its
// worker service.
func startV1(t *testing.T, prefix string) (c *client.Client, project, dir string, tg *Target) {
	t.Helper()
	c = testenv.Docker(t)
	img := testenv.WorkerImage(t, c)
	project = projectName(prefix)
	dir = testenv.ComposeProject(t, project, fmt.Sprintf(composeV1, img))
	tg = newTarget(t, project, "worker")
	// The worker has an anonymous volume (/data): removed replicas take theirs along.
	tg.cfg.RemoveVolumes = true
	return c, project, dir, tg
}

// TestComposeScale drives a docker-compose v1 project 1→5→0→2 and checks what compose and
// the workers see.
func TestComposeScale(t *testing.T) {
	c, project, dir, tg := startV1(t, "asc")

	st, err := tg.Status(context.Background())
	if err != nil || st.Replicas != 1 {
		t.Fatalf("Status = %+v, %v; want 1 replica", st, err)
	}

	t.Logf("1→5 took %s", mustScale(t, tg, 5))
	cs := checkReplicas(t, c, dir, project, "_", 5, 0)
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
	if out, err := dockerExec(t, probe, "/testworker", "get", "http://"+cloneName+":8080/"); err != nil || out != cs[4].Config.Hostname {
		t.Errorf("GET %s from probe = %q, %v; want hostname %s", cloneName, out, err, cs[4].Config.Hostname)
	}
	answered := map[string]bool{}
	for i := 0; i < 40 && len(answered) < 3; i++ {
		host := []string{"worker", "jobs"}[i%2]
		out, err := dockerExec(t, probe, "/testworker", "get", "http://"+host+":8080/")
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
	cs = checkReplicas(t, c, dir, project, "_", 0, 1)
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
	if logs := logsOf(t, cs[0].ID); !strings.Contains(logs, "got SIGTERM") || !strings.Contains(logs, "stopped cleanly") {
		t.Errorf("template's logs show no graceful stop:\n%s", logs)
	}

	mustScale(t, tg, 2)
	cs = checkReplicas(t, c, dir, project, "_", 2, 0)
	if cs[0].ID != tmpl.ID {
		t.Errorf("scale-up from zero did not restart the template %s", tmpl.Name)
	}
	if got := cs[1].Config.Labels[labelNumber]; got != "2" {
		t.Errorf("the clone after scaling down has number %s, want 2 (numbers are reused from the top)", got)
	}

	// docker-compose takes the clone for one of its own: up with the same count keeps it.
	testenv.Compose(t, dir, project, "up", "-d", "--scale", "worker=2")
	after := checkReplicas(t, c, dir, project, "_", 2, 0)
	for i := range after {
		if after[i].ID != cs[i].ID {
			t.Errorf("docker-compose up recreated %s", cs[i].Name)
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
func TestComposeRefuses(t *testing.T) {
	c := testenv.Docker(t)
	img := testenv.WorkerImage(t, c)
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
	testenv.ComposeProject(t, project, yml)
	for _, tc := range []struct {
		service string
		wantErr string // "" = scales
	}{
		{"fixed", fmt.Sprintf("publishes container port 8080/tcp on fixed host port %d", port)},
		{"named", `is named "` + project + `-the-one" (container_name: in the compose file)`},
		{"ephemeral", ""},
	} {
		t.Run(tc.service, func(t *testing.T) {
			tg := newTarget(t, project, tc.service)
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
func TestComposeEngineRestart(t *testing.T) {
	c, project, dir, tg := startV1(t, "ascrst")
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
	testenv.RestartDocker(t, func() {
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
	checkReplicas(t, c, dir, project, "_", 8, 0)
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
	re := regexp.MustCompile("^/" + project + "_worker_")
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
func TestComposeWatch(t *testing.T) {
	c, project, dir, tg := startV1(t, "ascw")
	changed := watch(t, tg)
	time.Sleep(300 * time.Millisecond) // let the event stream connect
	for len(changed) > 0 {
		<-changed
	}
	testenv.Compose(t, dir, project, "up", "-d", "--scale", "worker=3")
	waitChanged(t, changed, "docker-compose up --scale worker=3")
	st, err := tg.Status(context.Background())
	if err != nil || st.Replicas != 3 {
		t.Fatalf("Status = %+v, %v; want the 3 replicas compose started", st, err)
	}
	// Our own clones and compose's coexist: scale on from compose's 3.
	mustScale(t, tg, 5)
	checkReplicas(t, c, dir, project, "_", 5, 0)
}

// TestComposeCrashLoop: replicas that crash and are restarted by the engine hold their
// slots; repeated scaling to the same count must not pile up clones.
func TestComposeCrashLoop(t *testing.T) {
	c := testenv.Docker(t)
	img := testenv.WorkerImage(t, c)
	project := projectName("asccrash")
	v2Project(t, project, "--restart", "always", img, "get", "http://127.0.0.1:1/")
	tg := newTarget(t, project, "worker")
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

// TestComposeV2Names: a project laid out the way compose v2 does it (no v2 CLI here, so
// the first replica is made with `docker run` and v2's labels, name and aliases) gets
// clones named in v2's scheme, with v2's aliases.
func TestComposeV2Names(t *testing.T) {
	c := testenv.Docker(t)
	img := testenv.WorkerImage(t, c)
	project := projectName("ascv2")
	net := project + "_default"
	v2Project(t, project, img)
	tg := newTarget(t, project, "worker")
	mustScale(t, tg, 3)
	cs := serviceContainers(t, c, project, "worker")
	for i, ctr := range cs {
		name := fmt.Sprintf("%s-worker-%d", project, i+1)
		if trimSlash(ctr.Name) != name {
			t.Errorf("container %d is %s, want %s", i+1, ctr.Name, name)
		}
		if !containsAll(ctr.NetworkSettings.Networks[net].Aliases, name, "worker") {
			t.Errorf("%s: aliases %v, want %s and worker", name, ctr.NetworkSettings.Networks[net].Aliases, name)
		}
	}
}

// v2Project lays out a project the way compose v2 does (there is no v2 CLI here, and
// docker-compose v1 is slow to start): a network and worker replica 1, named and labelled
// as v2 names and labels them. runArgs end with the image and its arguments.
func v2Project(t *testing.T, project string, runArgs ...string) {
	t.Helper()
	net := project + "_default"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+labelProject+"="+project).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		_ = exec.Command("docker", "network", "rm", net).Run()
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
func TestComposeNameTaken(t *testing.T) {
	c := testenv.Docker(t)
	img := testenv.WorkerImage(t, c)
	project := projectName("asctaken")
	v2Project(t, project, img)
	squatter := project + "-worker-2"
	if out, err := exec.Command("docker", "create", "--name", squatter, img).CombinedOutput(); err != nil {
		t.Fatalf("docker create: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", squatter).Run() })

	tg := newTarget(t, project, "worker")
	mustScale(t, tg, 2)
	cs := serviceContainers(t, c, project, "worker")
	if got := trimSlash(cs[1].Name); got != project+"-worker-3" || cs[1].Config.Labels[labelNumber] != "3" {
		t.Fatalf("clone is %s number %s, want %s-worker-3 number 3", got, cs[1].Config.Labels[labelNumber], project)
	}
}
