package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDecisionLogAndWebhooks drives the built binary with a webhook receiver started by
// the test: a pause, a resume and the scale-up that follows reach the receiver and the
// decision log; the API, `autoscalerd history` against the daemon and, once it has
// stopped, against its state_dir all show them; autoscalerd_policy_paused follows the
// pause.
func TestDecisionLogAndWebhooks(t *testing.T) {
	var depth atomic.Int64
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"depth": %d}`, depth.Load())
	}))
	defer src.Close()
	events := make(chan map[string]any, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hook-secret-4417" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e map[string]any
		if err := json.NewDecoder(r.Body).Decode(&e); err == nil {
			events <- e
		}
	}))
	defer hook.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	conf := fmt.Sprintf(e2eConfig, "3600.75", 5, src.URL) + fmt.Sprintf(`
notify:
  - name: test
    events: [scaled, paused, resumed, config_reloaded]
    webhook: { url: "%s/hook", bearer_token: hook-secret-4417, retries: 1 }
decision_log: { hold_sample: 0 }
`, hook.URL)
	os.WriteFile(cfg, []byte(conf), 0o644)
	stateDir := t.TempDir()
	d := startDaemon(t, cfg, "--state-dir", stateDir)
	next := func(kind string) map[string]any {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e["event"] == kind {
					return e
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no %s event reached the webhook", kind)
			}
		}
	}
	post := func(path string) {
		t.Helper()
		resp, err := http.Post("http://"+d.addr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
	}

	d.waitFor("the first decision", 10*time.Second, func() bool { return d.policy("e2e").Current == 1 })
	post("/v1/policies/e2e/pause")
	if e := next("paused"); e["policy"] != "e2e" || !strings.HasPrefix(fmt.Sprint(e["url"]), "http://"+d.addr+"/#policy-e2e") {
		t.Errorf("paused event: %v", e)
	}
	if v, _ := d.metric("autoscalerd_policy_paused", `policy="e2e"`); v != 1 {
		t.Errorf("autoscalerd_policy_paused = %v while paused", v)
	}
	post("/v1/policies/e2e/resume")
	next("resumed")
	if v, ok := d.metric("autoscalerd_policy_paused", `policy="e2e"`); !ok || v != 0 {
		t.Errorf("autoscalerd_policy_paused = %v, %v after resume", v, ok)
	}
	depth.Store(50)
	e := next("scaled")
	if e["from"] != 1.0 || e["to"] != 5.0 || !strings.Contains(fmt.Sprint(e["reason"]), "depth=50") {
		t.Errorf("scaled event: %v", e)
	}
	post("/v1/reload")
	next("config_reloaded")
	if v, ok := d.metric("autoscalerd_notifications_dropped_total", `sink="test"`, `reason="failed"`); !ok || v != 0 {
		t.Errorf("dropped{failed} = %v, %v", v, ok)
	}

	var api struct {
		Source    string `json:"source"`
		Decisions []struct {
			Action   string
			From, To int
			Reason   string
		} `json:"decisions"`
	}
	d.getJSON("/v1/policies/e2e/decisions?since=1h&limit=50", &api)
	var actions []string
	for _, r := range api.Decisions {
		actions = append(actions, fmt.Sprintf("%s %d→%d", r.Action, r.From, r.To))
	}
	if api.Source != "log" || !inOrder(actions, "paused 1→1", "resumed 1→1", "up 1→5") {
		t.Errorf("decisions from the %s: %v", api.Source, actions)
	}
	resp, err := http.Get("http://" + d.addr + "/v1/policies/nope/decisions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("decisions of an unknown policy: %s", resp.Status)
	}
	resp, _ = http.Get("http://" + d.addr + "/v1/decisions?since=yesterday")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "neither an RFC 3339 time") {
		t.Errorf("a bad since: %s %s", resp.Status, body)
	}

	out, err := exec.Command(binary(t), "history", "--addr", d.addr, "--policy", "e2e", "--since", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("history: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "TIME") || !regexp.MustCompile(`e2e\s+up\s+1\s+5\s+\S*depth=50`).MatchString(string(out)) {
		t.Errorf("history table:\n%s", out)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	out, err = exec.Command(binary(t), "history", "--state-dir", stateDir, "--format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("history --state-dir: %v\n%s", err, out)
	}
	var recs []struct{ Policy, Action string }
	if err := json.Unmarshal(out, &recs); err != nil || len(recs) < 3 {
		t.Fatalf("history --state-dir --format json: %v\n%s", err, out)
	}
	if strings.Contains(d.logText(), "hook-secret-4417") {
		t.Error("the daemon's log holds the webhook's token")
	}
}

// inOrder reports whether want occur in got in this order (with anything in between).
func inOrder(got []string, want ...string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// TestDecisionsWithoutLog: with decision_log disabled the endpoint answers from memory
// (and says so), and nothing is written under state_dir/decisions.
func TestDecisionsWithoutLog(t *testing.T) {
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"depth": 30}`)
	}))
	defer src.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(e2eConfig, "3600.625", 5, src.URL)+"decision_log: { enabled: false }\n"), 0o644)
	stateDir := t.TempDir()
	d := startDaemon(t, cfg, "--state-dir", stateDir)
	d.waitFor("the scale-up", 15*time.Second, func() bool { return d.policy("e2e").Current == 3 })
	var api struct {
		Source    string `json:"source"`
		Decisions []struct {
			Action   string
			From, To int
		} `json:"decisions"`
	}
	d.getJSON("/v1/decisions?limit=5", &api)
	if api.Source != "memory" || len(api.Decisions) == 0 || len(api.Decisions) > 5 {
		t.Fatalf("source %q, %d decisions", api.Source, len(api.Decisions))
	}
	if _, err := os.Stat(filepath.Join(stateDir, "decisions")); !os.IsNotExist(err) {
		t.Errorf("state_dir/decisions exists with the log disabled: %v", err)
	}
}
