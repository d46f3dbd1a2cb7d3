package swarm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// inSwarm makes the engine a single-node swarm for the test, and leaves swarm mode again
// afterwards unless it was in swarm mode before.
func inSwarm(t *testing.T, e *testenv.Engine) {
	t.Helper()
	info, err := e.Client.Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
		return
	}
	args := []string{"swarm", "init", "--advertise-addr", "127.0.0.1"}
	if e.Host != "" {
		// The second engine beside Debian's: its own control and data ports, so both can
		// be swarm managers at once.
		args = []string{"swarm", "init", "--advertise-addr", "127.0.0.1:2378", "--listen-addr", "127.0.0.1:2378", "--data-path-port", "4790"}
	}
	e.Docker(t, args...)
	t.Cleanup(func() {
		if out, err := e.DockerErr("swarm", "leave", "--force"); err != nil {
			t.Errorf("docker swarm leave: %v\n%s", err, out)
		}
	})
}

func createService(t *testing.T, e *testenv.Engine, img, name string, args ...string) {
	t.Helper()
	args = append([]string{"service", "create", "--detach", "--name", name, "--stop-grace-period", "2s"}, args...)
	e.Docker(t, append(args, img)...)
	t.Cleanup(func() { _, _ = e.DockerErr("service", "rm", name) })
}

func newTarget(t *testing.T, e *testenv.Engine, service string) *Target {
	t.Helper()
	tg, err := New(&Config{Service: service}, targets.Deps{DockerHost: e.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.(*Target).Close(context.Background()) })
	return tg.(*Target)
}

// waitReady waits until the service runs want tasks.
func waitReady(t *testing.T, tg *Target, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := tg.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Replicas == want && st.Ready == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service has %+v, want %d replicas ready", st, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSwarm runs on each engine of testenv.Engines (Debian's 20.10 and Engine 29).
func TestSwarm(t *testing.T) {
	for _, e := range testenv.Engines(t) {
		t.Run(e.Name, func(t *testing.T) { testSwarm(t, e) })
	}
}

func testSwarm(t *testing.T, e *testenv.Engine) {
	c := e.Need(t)
	img := e.WorkerImage(t)
	inSwarm(t, e)
	name := fmt.Sprintf("asworker%04d", rand.IntN(10000))
	createService(t, e, img, name, "--replicas", "1")
	global := name + "-global"
	createService(t, e, img, global, "--mode", "global")
	ctx := context.Background()

	tg := newTarget(t, e, name)
	waitReady(t, tg, 1)

	t.Run("up and down", func(t *testing.T) {
		for _, n := range []int{4, 1} {
			if err := tg.Scale(ctx, n, targets.Reason{Policy: "test"}); err != nil {
				t.Fatalf("Scale(%d): %v", n, err)
			}
			waitReady(t, tg, n)
			ids, err := tg.ContainerIDs(ctx)
			if err != nil || len(ids) != n {
				t.Fatalf("ContainerIDs = %v, %v; want %d", ids, err, n)
			}
		}
	})

	t.Run("concurrent update is retried, not overwritten", func(t *testing.T) {
		tg.beforeUpdate = func(attempt int) {
			if attempt == 1 {
				// Someone else changes the service between our read and our write.
				e.Docker(t, "service", "update", "--detach", "--label-add", "touched=yes", name)
			}
		}
		defer func() { tg.beforeUpdate = nil }()
		before := tg.retried
		if err := tg.Scale(ctx, 3, targets.Reason{}); err != nil {
			t.Fatalf("Scale: %v", err)
		}
		if tg.retried == before {
			t.Fatal("the update was not rejected as out of sequence and retried")
		}
		res, err := c.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := res.Service.Spec
		if got := *spec.Mode.Replicated.Replicas; got != 3 {
			t.Errorf("replicas = %d, want 3", got)
		}
		if spec.Labels["touched"] != "yes" {
			t.Errorf("the other writer's label was lost: %v", spec.Labels)
		}
		waitReady(t, tg, 3)
		if err := tg.Scale(ctx, 1, targets.Reason{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("outside change noticed", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		changed := make(chan struct{}, 100)
		done := make(chan error, 1)
		go func() {
			done <- tg.Watch(ctx, func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			})
		}()
		defer func() { cancel(); <-done }()
		time.Sleep(300 * time.Millisecond) // let the event stream connect
		e.Docker(t, "service", "scale", "--detach", name+"=2")
		select {
		case <-changed:
		case <-time.After(15 * time.Second):
			t.Fatal("docker service scale was not noticed")
		}
		st, err := tg.Status(ctx)
		if err != nil || st.Replicas != 2 {
			t.Fatalf("Status = %+v, %v; want 2", st, err)
		}
	})

	t.Run("global refused", func(t *testing.T) {
		g := newTarget(t, e, global)
		err := g.Scale(ctx, 2, targets.Reason{})
		if err == nil || !strings.Contains(err.Error(), "global mode") {
			t.Fatalf("Scale of a global service: %v, want a refusal that says global mode", err)
		}
		if _, err := g.Status(ctx); err == nil || !strings.Contains(err.Error(), "global mode") {
			t.Fatalf("Status of a global service: %v, want a refusal", err)
		}
	})

	t.Run("missing service", func(t *testing.T) {
		_, err := newTarget(t, e, name+"-nope").Status(ctx)
		if err == nil || !strings.Contains(err.Error(), "swarm service "+name+"-nope: inspect:") {
			t.Fatalf("Status of a missing service: %v", err)
		}
	})
}
