package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestDemo runs the binary with no configuration anywhere: it must start the built-in demo
// and visibly scale the demo workers up within a minute, then stop them on SIGTERM.
func TestDemo(t *testing.T) {
	if _, err := os.Stat("/etc/autoscalerd/autoscalerd.yaml"); err == nil {
		testenv.Missing(t, "a machine without /etc/autoscalerd/autoscalerd.yaml", "the demo runs only when no configuration exists anywhere; move that file away")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(binary(t), "--listen", addr, "--state-dir", t.TempDir())
	cmd.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTOSCALERD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out strings.Builder
	cmd.Stderr, cmd.Stdout = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	most := 0
	deadline := time.Now().Add(75 * time.Second)
	for time.Now().Before(deadline) && most < 3 {
		time.Sleep(time.Second)
		resp, err := http.Get("http://" + addr + "/v1/policies")
		if err != nil {
			continue
		}
		var ps []struct {
			Name    string `json:"name"`
			Current int    `json:"current"`
		}
		json.NewDecoder(resp.Body).Decode(&ps)
		resp.Body.Close()
		if len(ps) == 1 && ps[0].Current > most {
			most = ps[0].Current
		}
	}
	if most < 3 {
		t.Fatalf("the demo reached %d workers; it should scale to 3 or more within a minute\n%s", most, out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\n%s", err, out.String())
	}
	for _, want := range []string{"running the built-in demo", "demo worker 1 started", "scale 1→2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
