package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// eachV5 runs test with Compose v5 on each engine.
func eachV5(t *testing.T, test func(t *testing.T, cc *testenv.ComposeCLI)) {
	for _, e := range testenv.Engines(t) {
		cc := e.Compose("compose5")
		t.Run(e.Name, func(t *testing.T) {
			cc.NeedCompose(t)
			test(t, cc)
		})
	}
}

// TestComposeV5SeesClones: what a Compose v5 user sees of the target's clones: `ps` and
// `ps --format json` list them with their numbers, `logs worker` shows theirs, and
// `down -v` removes them with their anonymous volumes.
func TestComposeV5SeesClones(t *testing.T) { eachV5(t, testV5SeesClones) }

func testV5SeesClones(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, project, dir, tg := startProject(t, cc, "ascv5")
	mustScale(t, tg, 3)
	cs := checkReplicas(t, cc, dir, project, 3, 0)

	// ps --format json: one object per line (v2.21+), each with the container-number label.
	out := cc.Run(t, dir, project, "ps", "--format", "json", "worker")
	seen := map[string]string{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue // compose's warnings (the obsolete `version:` key)
		}
		var row struct {
			Name, Service, State, Labels string
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("ps --format json line %q: %v", line, err)
		}
		num := ""
		for l := range strings.SplitSeq(row.Labels, ",") {
			if v, ok := strings.CutPrefix(l, labelNumber+"="); ok {
				num = v
			}
		}
		if row.Service != "worker" || row.State != "running" {
			t.Errorf("ps --format json: %+v, want a running worker", row)
		}
		seen[row.Name] = num
	}
	for _, ctr := range cs {
		name, num := trimSlash(ctr.Name), ctr.Config.Labels[labelNumber]
		if got, ok := seen[name]; !ok || got != num {
			t.Errorf("ps --format json lists %s with number %q (listed: %v), want number %s", name, got, ok, num)
		}
		if want := fmt.Sprintf("%s-worker-%s", project, num); name != want {
			t.Errorf("container %s, want compose v2+'s name %s", name, want)
		}
	}

	// logs worker: every replica's start line, prefixed with its service and number.
	logs := cc.Run(t, dir, project, "logs", "--no-color", "worker")
	for _, ctr := range cs {
		want := "testworker: start hostname=" + ctr.Config.Hostname
		prefix := "worker-" + ctr.Config.Labels[labelNumber] + " "
		found := false
		for line := range strings.Lines(logs) {
			found = found || strings.HasPrefix(line, prefix) && strings.Contains(line, want)
		}
		if !found {
			t.Errorf("logs worker has no line %q prefixed %q:\n%s", want, prefix, logs)
		}
	}

	// down -v removes the clones and their anonymous volumes (plain `down` keeps anonymous
	// volumes, the clones' as those of compose's own replicas).
	var vols []string
	for _, ctr := range cs {
		for _, m := range ctr.Mounts {
			if m.Destination == "/data" {
				vols = append(vols, m.Name)
			}
		}
	}
	if len(vols) != 3 {
		t.Fatalf("anonymous /data volumes %v, want one per replica", vols)
	}
	cc.Run(t, dir, project, "down", "-v", "-t", "2")
	res, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labelProject+"="+project)})
	if err != nil || len(res.Items) != 0 {
		t.Errorf("after down -v: %d containers of the project left (%v)", len(res.Items), err)
	}
	for _, v := range vols {
		if _, err := c.VolumeInspect(context.Background(), v, client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("%s: volume %s still there after down -v (%v)", e.Name, v, err)
		}
	}
}

// TestComposeV5Daemon runs the daemon beside a Compose v5 user: `up -d` again (which
// scales the service back to its `scale:`, 1, removing the extra replicas), `up -d
// --scale worker=K` by hand, and a new image in the compose file. Each time the policy
// adopts what it observes, re-converges with one action, and then leaves the service
// alone: it does not fight compose in a loop.
func TestComposeV5Daemon(t *testing.T) { eachV5(t, testV5Daemon) }

func testV5Daemon(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	_, project, dir, tg := startProject(t, cc, "ascv5d")
	var queued atomic.Int64
	queued.Store(30) // 3 workers
	logs := startDaemon(t, cc, project, &queued, 6, "1s", "1s")
	settled(t, tg, 3, 60*time.Second)
	checkReplicas(t, cc, dir, project, 3, 0)

	// actions counts the daemon's scaling actions so far.
	actions := func() int { return strings.Count(logs.String(), `msg=scaling `) }
	// reconverges: after the outside change, the daemon gets the service back to 3 with
	// at most one action per observed change, then stays put.
	reconverges := func(what string, before, maxActions int) {
		t.Helper()
		settled(t, tg, 3, 60*time.Second)
		time.Sleep(3 * time.Second) // several ticks and both cooldowns
		settled(t, tg, 3, time.Second)
		if n := actions() - before; n < 1 || n > maxActions {
			t.Errorf("after %s: %d scaling actions, want 1..%d:\n%s", what, n, maxActions, logs.String())
		}
	}

	// `up -d` converges the service to its scale (1): compose v5 stops and removes the
	// replicas above number 1, clones and its own alike.
	before := actions()
	out := cc.Run(t, dir, project, "up", "-d")
	t.Logf("compose up -d at 3 replicas:\n%s", out)
	reconverges("up -d", before, 2)

	// `up -d --scale worker=5` by hand: compose adds 4 and 5 next to the clones; the
	// policy adopts 5 and, after its down cooldown, goes back to 3.
	before = actions()
	cc.Run(t, dir, project, "up", "-d", "--scale", "worker=5")
	reconverges("up -d --scale worker=5", before, 2)
	checkReplicas(t, cc, dir, project, 3, 0)

	// A new image in the compose file: `up -d` recreates the replicas (down to 1), and
	// the clones the daemon makes afterwards run the new image.
	bin, err := testenv.BuildStatic(t, "./internal/testing/testworker")
	if err != nil {
		t.Fatal(err)
	}
	img2, err := testenv.ScratchImage(e.Client, "autoscalerd-testworker-b", bin, []string{"/testworker"}, []string{"serve"}, "8081")
	if err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	old := e.WorkerImage(t)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(strings.ReplaceAll(string(yml), old, img2)), 0o644); err != nil {
		t.Fatal(err)
	}
	before = actions()
	cc.Run(t, dir, project, "up", "-d")
	reconverges("a new image and up -d", before, 2)
	ins, err := e.Client.ImageInspect(context.Background(), img2)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range checkReplicas(t, cc, dir, project, 3, 0) {
		if ctr.Image != ins.ID {
			t.Errorf("%s runs image %s, want the new %s (%s)", ctr.Name, ctr.Image, img2, ins.ID)
		}
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "msg=scaling ") {
			t.Logf("daemon: %s", strings.TrimSpace(line))
		}
	}
	// And compose takes the new clones for up to date: up with the same count keeps them.
	cs := serviceContainers(t, e.Client, project, "worker")
	cc.Run(t, dir, project, "up", "-d", "--scale", "worker=3")
	for i, ctr := range serviceContainers(t, e.Client, project, "worker") {
		if ctr.ID != cs[i].ID {
			t.Errorf("up -d --scale worker=3 recreated %s", ctr.Name)
		}
	}
}
