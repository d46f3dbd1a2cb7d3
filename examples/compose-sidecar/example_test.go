// Package composesidecarexample checks the compose-sidecar example: its config loads and
// asks for the worker counts the README promises, and the whole example runs on a real
// engine with docker-compose, the sidecar scaling the worker service.
package composesidecarexample

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/policy"
	_ "github.com/autoscalerd/autoscalerd/sources/hatchet"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/compose"
)

var env = map[string]string{
	"COMPOSE_PROJECT_NAME":  "shop",
	"AUTOSCALERD_API_TOKEN": "t0ken",
	"HATCHET_TENANT_ID":     "707d0855-80ab-4e1f-a156-f1c4546cbf52",
	"HATCHET_TOKEN":         "example-hatchet-token",
}

func TestConfig(t *testing.T) {
	ps := exampletest.Load(t, "autoscalerd.yaml", env)
	if k := ps[0].Config.Target.Key(); k != "compose:shop/worker" {
		t.Errorf("target %s, want the worker service of project shop (.env)", k)
	}
	for _, tc := range []struct {
		queued float64
		want   int
	}{{0, 1}, {50, 1}, {51, 2}, {230, 5}, {500, 10}, {10000, 10}} {
		d, _ := policy.Decide(ps[0], policy.State{}, policy.Inputs{Values: []policy.Value{{V: tc.queued}}, Current: 1}, time.Now())
		if d.Desired != tc.want {
			t.Errorf("%v queued: %d workers, want %d (%s)", tc.queued, d.Desired, tc.want, d.Reason)
		}
	}
}

// TestExampleRuns brings the example up as the README's registry-free path does:
// build-local.sh builds the images here (static binaries FROM scratch: autoscalerd, the
// fake Hatchet API, the example's worker), then `up -d` with docker-compose.local.yml.
// Queuing 230 tasks must give 5 workers, created by the sidecar through the mounted
// socket. It runs on Debian's Engine 20.10 with docker-compose 1.29 and on Engine 29 with
// Compose v5.
func TestExampleRuns(t *testing.T) {
	for _, e := range testenv.Engines(t) {
		cc := e.UsualCompose()
		t.Run(e.Name+"/"+cc.Name, func(t *testing.T) {
			cc.NeedCompose(t)
			testExampleRuns(t, cc)
		})
	}
}

func testExampleRuns(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	build := exec.Command("bash", "build-local.sh")
	build.Env = append(e.Env(), "DOCKER="+e.DockerCLI)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-local.sh on %s: %v\n%s", e.Name, err, out)
	}
	project := fmt.Sprintf("sidecar%d", time.Now().UnixNano()%100000)
	hatchetPort, apiPort := testenv.FreePort(t), testenv.FreePort(t)
	composeEnv := append(e.Env(),
		"COMPOSE_FILE=docker-compose.yml:docker-compose.local.yml", // as the README says
		"COMPOSE_PROJECT_NAME="+project,
		fmt.Sprintf("FAKE_HATCHET_PORT=%d", hatchetPort),
		fmt.Sprintf("AUTOSCALERD_PORT=%d", apiPort),
	)
	if sock, ok := strings.CutPrefix(e.Host, "unix://"); ok {
		composeEnv = append(composeEnv, "DOCKER_SOCKET="+sock)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(cc.Bin, append([]string{"--ansi", "never"}, args...)...)
		cmd.Env = composeEnv
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		// The sidecar first, so it does not replace workers while they are removed.
		if out, err := run("stop", "autoscalerd"); err != nil {
			t.Logf("stop autoscalerd: %v\n%s", err, out)
		}
		if t.Failed() {
			out, _ := run("logs", "--no-color", "autoscalerd", "fake-hatchet", "worker")
			t.Logf("logs:\n%s", out)
		}
		if out, err := run("down", "-v", "-t", "2"); err != nil {
			t.Logf("down: %v\n%s", err, out)
		}
	})
	if out, err := run("up", "-d"); err != nil {
		t.Fatalf("%s up -d: %v\n%s", cc.Name, err, out)
	}

	tg, err := compose.New(&compose.Config{Project: project, Service: "worker", StopTimeout: -1}, targets.Deps{DockerHost: e.Host})
	if err != nil {
		t.Fatal(err)
	}
	waitWorkers := func(want int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			st, err := tg.Status(context.Background())
			if err == nil && st.Replicas == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d workers wanted; status %+v, %v", want, st, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitWorkers(1)
	if err := testenv.WaitTCP(context.Background(), fmt.Sprintf("127.0.0.1:%d", hatchetPort), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/queued?task=process-order&n=230", hatchetPort), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitWorkers(5)

	ps, err := run("ps", "worker")
	if err != nil {
		t.Fatalf("%s ps: %v\n%s", cc.Name, err, ps)
	}
	for i := 1; i <= 5; i++ {
		if name := fmt.Sprintf("%s%sworker%s%d", project, cc.Sep, cc.Sep, i); !strings.Contains(ps, name) {
			t.Errorf("%s ps does not list %s:\n%s", cc.Name, name, ps)
		}
	}
	// The README's table, from the daemon inside its (locally built) image.
	if out, err := run("exec", "-T", "autoscalerd", "autoscalerd", "status"); err != nil || !strings.Contains(out, "workers") {
		t.Errorf("%s exec autoscalerd autoscalerd status: %v\n%s", cc.Name, err, out)
	}
	// The daemon's API, published on the host, reports the same.
	r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/policies", apiPort))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var pols []struct {
		Name    string `json:"name"`
		Current int    `json:"current"`
	}
	if err := json.NewDecoder(r.Body).Decode(&pols); err != nil || len(pols) != 1 || pols[0].Current != 5 {
		t.Errorf("GET /v1/policies = %+v, %v; want workers at 5", pols, err)
	}
}
