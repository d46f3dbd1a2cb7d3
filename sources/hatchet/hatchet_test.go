package hatchet

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

const (
	tenant = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
	token  = "hatchet-api-t0ken-Zq9"
)

// taskStats has the exact shape of Hatchet's task-stats response (seed 000): per task,
// queued {total, queues, concurrency, oldest} and running {total, oldest, concurrency}.
// "only-running" has no queued entry; tasks with nothing queued or running are absent.
const taskStats = `{
  "send-email": {
    "queued": {
      "total": 150,
      "queues": {"send-email:default": 100, "send-email:priority": 50},
      "concurrency": [
        {"expression": "input.user_id", "type": "GROUP_ROUND_ROBIN", "keys": {"user-123": 10, "user-456": 15}}
      ],
      "oldest": "2024-01-15T10:30:00Z"
    },
    "running": {"total": 25, "oldest": "2024-01-15T10:25:00Z", "concurrency": []}
  },
  "resize-image": {
    "queued": {"total": 40, "queues": {"resize-image:default": 40}, "concurrency": [], "oldest": "2024-01-15T10:31:00Z"},
    "running": {"total": 8, "oldest": "2024-01-15T10:29:00Z", "concurrency": []}
  },
  "generate-report": {
    "queued": {"total": 3, "queues": {"generate-report:default": 3}, "concurrency": [], "oldest": "2024-01-15T10:32:00Z"},
    "running": {"total": 1, "oldest": "2024-01-15T10:32:30Z", "concurrency": []}
  },
  "only-running": {
    "running": {"total": 6, "oldest": "2024-01-15T10:20:00Z", "concurrency": []}
  }
}`

// hatchetServer mimics the task-stats endpoint: it checks the bearer token and the tenant
// in the path, and answers body. A wrong token gets 401 with the token echoed back, as a
// careless server might.
func hatchetServer(t *testing.T, prefix, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"description":"invalid token `+strings.TrimPrefix(got, "Bearer ")+`"}]}`)
			return
		}
		if r.URL.Path != prefix+"/api/v1/tenants/"+tenant+"/task-stats" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"description":"tenant not found"}]}`)
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// decode decodes the kind's YAML as the loader does, defaults and checks included, and
// returns the configuration errors, one per line ("" when valid).
func decode(t *testing.T, text string, env map[string]string) (*Config, string) {
	t.Helper()
	cfg := &Config{URL: DefaultURL, State: "queued", Measure: sources.MeasureCount}
	if err := plugintest.Decode(t, text, cfg, env); err != nil {
		return cfg, err.Error()
	}
	return cfg, ""
}

func build(t *testing.T, text string, logs io.Writer) sources.Source {
	t.Helper()
	cfg, errs := decode(t, text, map[string]string{"HATCHET_TOKEN": token})
	if errs != "" {
		t.Fatalf("config errors:\n%s", errs)
	}
	if logs == nil {
		logs = io.Discard
	}
	src, err := New(cfg, sources.Deps{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src
}

func TestValue(t *testing.T) {
	tests := []struct {
		name   string
		prefix string // where the self-hosted API lives
		body   string
		extra  string
		want   float64
	}{
		{name: "all tasks queued", body: taskStats, want: 193},
		{name: "all tasks running", body: taskStats, extra: "state: running", want: 40},
		{name: "chosen tasks", body: taskStats, extra: "tasks: [send-email, generate-report]", want: 153},
		{name: "chosen tasks running", body: taskStats, extra: "tasks: [send-email, only-running]\nstate: running", want: 31},
		{name: "task without a queued entry counts 0", body: taskStats, extra: "tasks: [only-running]", want: 0},
		{name: "absent task counts 0", body: taskStats, extra: "tasks: [resize-image, not-queued-now]", want: 40},
		{name: "nothing queued anywhere", body: `{}`, want: 0},
		{name: "self-hosted under a path, trailing slash", prefix: "/hatchet", body: taskStats, extra: "tasks: [resize-image]", want: 40},
		{name: "total as a string", body: `{"a": {"queued": {"total": "12"}}}`, want: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hatchetServer(t, tt.prefix, tt.body)
			src := build(t, "tenant_id: "+tenant+"\ntoken: ${HATCHET_TOKEN}\nurl: "+srv.URL+tt.prefix+"/\n"+tt.extra, nil)
			got, err := plugintest.Value(t, src)
			if err != nil {
				t.Fatalf("Value: %v", err)
			}
			if got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOldestAge reads measure: oldest_age from the same responses: the age of the earliest
// `oldest` over the chosen tasks in the chosen state, at a fixed clock.
func TestOldestAge(t *testing.T) {
	now := time.Date(2024, 1, 15, 10, 40, 0, 0, time.UTC)
	tests := []struct {
		name  string
		body  string
		extra string
		want  float64
	}{
		{name: "all tasks queued", body: taskStats, want: 600},
		{name: "all tasks running", body: taskStats, extra: "state: running", want: 1200},
		{name: "chosen tasks", body: taskStats, extra: "tasks: [resize-image, generate-report]", want: 540},
		{name: "chosen tasks running", body: taskStats, extra: "tasks: [generate-report, resize-image]\nstate: running", want: 660},
		{name: "task without a queued entry has waited 0", body: taskStats, extra: "tasks: [only-running]", want: 0},
		{name: "nothing queued anywhere", body: `{}`, want: 0},
		{name: "a drained task without a timestamp", body: `{"a": {"queued": {"total": 0}}, "b": {"queued": {"total": 2, "oldest": "2024-01-15T10:39:30Z"}}}`, want: 30},
		{name: "fractional seconds", body: `{"a": {"queued": {"total": 1, "oldest": "2024-01-15T10:39:59.25Z"}}}`, want: 0.75},
		{name: "a timestamp ahead of our clock is skew, 0", body: `{"a": {"queued": {"total": 1, "oldest": "2024-01-15T10:40:02Z"}}}`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hatchetServer(t, "", tt.body)
			src := build(t, "tenant_id: "+tenant+"\ntoken: ${HATCHET_TOKEN}\nmeasure: oldest_age\nurl: "+srv.URL+"\n"+tt.extra, nil)
			src.(*source).now = func() time.Time { return now }
			got, err := plugintest.Value(t, src)
			if err != nil {
				t.Fatalf("Value: %v", err)
			}
			if got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, body, want string }{
		{"queued runs without a timestamp", `{"a": {"queued": {"total": 3}}}`, `task "a": queued has runs but no oldest timestamp`},
		{"not a timestamp", `{"a": {"queued": {"total": 3, "oldest": "yesterday"}}}`, `task "a": queued.oldest: "yesterday" is not an RFC 3339 timestamp`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := hatchetServer(t, "", tt.body)
			src := build(t, "tenant_id: "+tenant+"\ntoken: ${HATCHET_TOKEN}\nmeasure: oldest_age\nurl: "+srv.URL, nil)
			_, err := plugintest.Value(t, src)
			plugintest.ErrorSays(t, err, []string{tt.want}, token)
		})
	}
}

func TestValueErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string // after url:
		body   string
		want   []string
	}{
		{
			name:   "wrong token",
			config: "tenant_id: " + tenant + "\ntoken: wrong-" + token,
			body:   taskStats,
			want: []string{"hatchet: GET http://127.0.0.1:", "/task-stats: 401 Unauthorized", `invalid token <redacted>`,
				"check that token is a valid API token of tenant " + tenant},
		},
		{
			name:   "wrong tenant",
			config: "tenant_id: 00000000-0000-0000-0000-000000000000\ntoken: ${HATCHET_TOKEN}",
			body:   taskStats,
			want:   []string{"404 Not Found", "tenant not found", "check tenant_id"},
		},
		{
			name:   "not an object",
			config: "tenant_id: " + tenant + "\ntoken: ${HATCHET_TOKEN}",
			body:   `[1, 2]`,
			want:   []string{"the response is an array of 2 elements, not task stats"},
		},
		{
			name:   "total not a number",
			config: "tenant_id: " + tenant + "\ntoken: ${HATCHET_TOKEN}",
			body:   `{"a": {"queued": {"total": "lots"}}}`,
			want:   []string{`task "a": queued.total: "lots" is not a number`},
		},
		{
			name:   "state without total",
			config: "tenant_id: " + tenant + "\ntoken: ${HATCHET_TOKEN}",
			body:   `{"a": {"queued": {}}}`,
			want:   []string{`task "a": queued has no total`},
		},
		{
			name:   "not JSON",
			config: "tenant_id: " + tenant + "\ntoken: ${HATCHET_TOKEN}",
			body:   `<html>`,
			want:   []string{"is not valid JSON: <html>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hatchetServer(t, "", tt.body)
			src := build(t, tt.config+"\nurl: "+srv.URL, nil)
			_, err := plugintest.Value(t, src)
			plugintest.ErrorSays(t, err, tt.want, token)
		})
	}
}

// TestAbsentTaskLoggedOnce checks that an absent task is logged at debug once per
// absence, with the task names present, and never with the token.
func TestAbsentTaskLoggedOnce(t *testing.T) {
	var mu sync.Mutex
	body := taskStats
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	logs := &plugintest.SyncBuffer{}
	src := build(t, "tenant_id: "+tenant+"\ntoken: ${HATCHET_TOKEN}\nurl: "+srv.URL+"\ntasks: [send-email, send-sms]", logs)
	count := func() int { return strings.Count(logs.String(), "task=send-sms") }
	for range 3 {
		if v, err := plugintest.Value(t, src); err != nil || v != 150 {
			t.Fatalf("Value = %v, %v", v, err)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("absent task logged %d times over 3 ticks, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "resize-image") {
		t.Errorf("log does not list the tasks present at debug level:\n%s", logs)
	}
	// The task appears, then drains again: that is a new absence, logged again.
	mu.Lock()
	body = `{"send-email": {"queued": {"total": 1}}, "send-sms": {"queued": {"total": 2}}}`
	mu.Unlock()
	if v, err := plugintest.Value(t, src); err != nil || v != 3 {
		t.Fatalf("Value = %v, %v", v, err)
	}
	mu.Lock()
	body = `{}`
	mu.Unlock()
	if v, err := plugintest.Value(t, src); err != nil || v != 0 {
		t.Fatalf("Value = %v, %v", v, err)
	}
	if n := count(); n != 2 {
		t.Errorf("logged %d times, want 2 (one per absence)", n)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("log leaks the token:\n%s", logs)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // error substrings; none means valid
		url  string   // expected default URL when valid
	}{
		{name: "minimal", yaml: "tenant_id: " + tenant + "\ntoken: t", url: DefaultURL},
		{name: "missing keys", yaml: "state: queued", want: []string{
			`test.yaml:1:1: q: missing required key "tenant_id"`, `missing required key "token"`}},
		{name: "tenant name instead of id", yaml: "tenant_id: shop\ntoken: t", want: []string{
			`test.yaml:1:12: q.tenant_id: "shop" is not a tenant ID`}},
		{name: "empty tenant", yaml: "tenant_id: ''\ntoken: t", want: []string{`q.tenant_id: is empty`}},
		{name: "bad state", yaml: "tenant_id: " + tenant + "\ntoken: t\nstate: failed", want: []string{
			`q.state: "failed" is not a task state (use queued or running)`}},
		{name: "bad measure", yaml: "tenant_id: " + tenant + "\ntoken: t\nmeasure: age", want: []string{
			`test.yaml:3:10: q.measure: "age" is not a measure (use count or oldest_age)`}},
		{name: "oldest age", yaml: "tenant_id: " + tenant + "\ntoken: t\nmeasure: oldest_age", url: DefaultURL},
		{name: "empty token", yaml: "tenant_id: " + tenant + "\ntoken: ''", want: []string{`q.token: is empty`}},
		{name: "bad url", yaml: "tenant_id: " + tenant + "\ntoken: t\nurl: cloud.onhatchet.run", want: []string{
			`q.url: cloud.onhatchet.run: want an http:// or https:// URL`}},
		{name: "duplicate task", yaml: "tenant_id: " + tenant + "\ntoken: t\ntasks: [a, b, a]", want: []string{
			`q.tasks: lists "a" twice`}},
		{name: "empty task", yaml: "tenant_id: " + tenant + "\ntoken: t\ntasks: ['']", want: []string{
			`q.tasks: holds an empty task name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, all := decode(t, tt.yaml, nil)
			if len(tt.want) == 0 {
				if all != "" {
					t.Fatalf("unexpected errors:\n%s", all)
				}
				if cfg.URL != tt.url || cfg.State != "queued" {
					t.Errorf("defaults: url %q, state %q", cfg.URL, cfg.State)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors:\n%s\ndo not contain %q", all, w)
				}
			}
		})
	}
}

// TestTokenFromFile checks the { file: ... } form of the token reaches the server.
func TestTokenFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "hatchet_token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := hatchetServer(t, "", taskStats)
	src := build(t, "tenant_id: "+tenant+"\ntoken: {file: "+f+"}\nurl: "+srv.URL+"\ntasks: [generate-report]", nil)
	if v, err := plugintest.Value(t, src); err != nil || v != 3 {
		t.Fatalf("Value = %v, %v", v, err)
	}
}
