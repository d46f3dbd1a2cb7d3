package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const secretToken = "tok-3f9a1c77d2"

// load decodes a config holding only `notify:` through the real loader.
func load(t *testing.T, yaml string) *configs.Config {
	t.Helper()
	env := map[string]string{"HOOK_TOKEN": secretToken}
	cfg, err := configs.Parse("test.yaml", []byte(yaml), configs.Options{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

type harness struct {
	n   *Notifier
	reg *prometheus.Registry
	log *plugintest.SyncBuffer
}

func newHarness(t *testing.T, cfg *configs.Config) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), log: &plugintest.SyncBuffer{}}
	h.n = New(Options{
		Logger:     slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: h.reg,
		PageURL:    "http://autoscaler.test:9090/",
		Host:       "node-1",
		Backoff:    5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	})
	if err := h.n.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.n.Close(ctx)
	})
	return h
}

func (h *harness) dropped(sink, reason string) float64 {
	return testutil.ToFloat64(h.n.dropped.WithLabelValues(sink, reason))
}

// received is a webhook receiver: it records each request.
type received struct {
	Header http.Header
	Body   []byte
}

func receiver(t *testing.T, status int) (*httptest.Server, chan received) {
	t.Helper()
	got := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{Header: r.Header.Clone(), Body: b}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the receiver")
		panic("unreachable")
	}
}

// eventually polls cond; deliveries happen on the sinks' goroutines.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var scaled = Event{Kind: configs.EventScaled, Policy: "workers", From: 2, To: 4,
	Reason: "queued=350 → ceil(350/100)=4 → clamp[1,20]=4 → cooldown.up ok → scale 2→4",
	Time:   time.Date(2026, 12, 2, 2, 10, 0, 0, time.UTC)}

func TestJSONWebhook(t *testing.T) {
	srv, got := receiver(t, http.StatusOK)
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: ops
    events: [scaled, paused]
    webhook:
      url: %s/hook
      bearer_token: ${HOOK_TOKEN}
      headers: { X-Team: capacity }
`, srv.URL)))
	h.n.Notify(Event{Kind: configs.EventConfigReloaded}) // filtered out
	h.n.Notify(scaled)
	r := wait(t, got)
	if a := r.Header.Get("Authorization"); a != "Bearer "+secretToken {
		t.Errorf("Authorization = %q", a)
	}
	if r.Header.Get("X-Team") != "capacity" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", r.Header)
	}
	var b map[string]any
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	want := map[string]any{
		"event": "scaled", "policy": "workers", "from": 2.0, "to": 4.0,
		"summary": "workers scaled 2 → 4", "reason": scaled.Reason,
		"reasons": []any{"queued=350", "ceil(350/100)=4", "clamp[1,20]=4", "cooldown.up ok", "scale 2→4"},
		"time":    "2026-12-02T02:10:00Z", "url": "http://autoscaler.test:9090/#policy-workers", "host": "node-1",
	}
	for k, v := range want {
		if fmt.Sprint(b[k]) != fmt.Sprint(v) {
			t.Errorf("body[%q] = %v, want %v", k, b[k], v)
		}
	}
	eventually(t, "the sent counter", func() bool { return testutil.ToFloat64(h.n.sent.WithLabelValues("ops")) == 1 })
	select {
	case r := <-got:
		t.Errorf("the filtered-out event was delivered: %s", r.Body)
	default:
	}
}

func TestSlackWebhook(t *testing.T) {
	srv, got := receiver(t, http.StatusOK)
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - webhook: { url: "%s/services/T000/B000/XXXXXXXXXXXX", format: slack }
`, srv.URL)))
	e := scaled
	e.Reason = "queued=<!channel> → scale 2→4"
	h.n.Notify(e)
	r := wait(t, got)
	var b struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Elements []struct{ Type, Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	if b.Text != "autoscalerd: workers scaled 2 → 4" {
		t.Errorf("text = %q", b.Text)
	}
	if len(b.Blocks) != 3 || b.Blocks[0].Type != "section" || b.Blocks[2].Type != "context" {
		t.Fatalf("blocks: %s", r.Body)
	}
	if want := "Reason: `queued=&lt;!channel&gt; → scale 2→4`"; b.Blocks[1].Text.Text != want {
		t.Errorf("reason block = %q, want %q (mrkdwn-escaped)", b.Blocks[1].Text.Text, want)
	}
	if link := b.Blocks[2].Elements[2].Text; link != "<http://autoscaler.test:9090/#policy-workers|status page>" {
		t.Errorf("link = %q", link)
	}
	// The sink is named after the host, never the URL, whose path is the credential.
	eventually(t, "the sent counter", func() bool { return testutil.ToFloat64(h.n.sent.WithLabelValues("127.0.0.1")) == 1 })
}

// A receiver that answers 500 gets 1+retries attempts; then the event is dropped and
// counted, and the log says so without the URL or the token.
func TestServerErrorRetriesThenDrops(t *testing.T) {
	srv, got := receiver(t, http.StatusInternalServerError)
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: flaky
    webhook: { url: "%s/hooks/%s", retries: 2, bearer_token: "${HOOK_TOKEN}" }
`, srv.URL, secretToken)))
	h.n.Notify(scaled)
	for range 3 {
		wait(t, got)
	}
	eventually(t, "the drop", func() bool { return h.dropped("flaky", DropFailed) == 1 })
	select {
	case <-got:
		t.Error("a fourth attempt with retries: 2")
	case <-time.After(100 * time.Millisecond):
	}
	log := h.log.String()
	if !strings.Contains(log, "notification dropped") || !strings.Contains(log, "HTTP 500 Internal Server Error (after 3 attempts)") {
		t.Errorf("log does not report the drop:\n%s", log)
	}
	if strings.Contains(log, secretToken) || strings.Contains(log, "/hooks/") {
		t.Errorf("log leaks the URL or token:\n%s", log)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	srv, got := receiver(t, http.StatusForbidden)
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: denied
    webhook: { url: "%s", retries: 5 }
`, srv.URL)))
	h.n.Notify(scaled)
	wait(t, got)
	eventually(t, "the drop", func() bool { return h.dropped("denied", DropRejected) == 1 })
	if n := len(got); n != 0 {
		t.Errorf("%d retries of a 403", n)
	}
}

// A receiver that never answers: each attempt ends at the timeout, Notify still returns
// at once, and once the queue is full further events are dropped and counted. The log
// says so once, not once per event.
func TestHangingSinkNeverBlocks(t *testing.T) {
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: hung
    webhook: { url: "%s", timeout: 1h, retries: 0, queue_size: 5 }
`, srv.URL)))
	h.n.Notify(scaled)
	wait(t, arrived) // the sink's goroutine is stuck in that request now
	for range 5 + 20 {
		h.n.Notify(scaled)
	}
	if d := h.dropped("hung", DropQueueFull); d != 20 {
		t.Errorf("dropped{queue_full} = %v, want 20 (5 queued, 1 in flight)", d)
	}
	if n := strings.Count(h.log.String(), "notification dropped"); n != 1 {
		t.Errorf("%d log lines for 20 drops in a burst, want 1 (rate-limited):\n%s", n, h.log.String())
	}
	// Close gives up at its deadline and counts what was still queued.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	h.n.Close(ctx)
	if d := h.dropped("hung", DropClosed); d != 6 {
		t.Errorf("dropped{closed} = %v, want 6 (the request in flight and the 5 queued)", d)
	}
	h.n.Notify(scaled) // after Close: ignored, no panic on the closed queue
}

func TestTimeoutIsRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
			<-r.Context().Done()               // hang until the client gives up
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: slow
    webhook: { url: "%s", timeout: 100ms, retries: 1 }
`, srv.URL)))
	h.n.Notify(scaled)
	eventually(t, "delivery on the retry", func() bool { return testutil.ToFloat64(h.n.sent.WithLabelValues("slow")) == 1 })
	if d := h.dropped("slow", DropFailed); d != 0 {
		t.Errorf("dropped = %v", d)
	}
}

func TestDeadSinkErrorHidesURL(t *testing.T) {
	// A listener closed at once: connection refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHarness(t, load(t, fmt.Sprintf(`
notify:
  - name: dead
    webhook: { url: "%s/services/%s", retries: 1 }
`, url, secretToken)))
	h.n.Notify(scaled)
	eventually(t, "the drop", func() bool { return h.dropped("dead", DropFailed) == 1 })
	log := h.log.String()
	if !strings.Contains(log, "connection refused") {
		t.Errorf("log does not say why:\n%s", log)
	}
	if strings.Contains(log, secretToken) || strings.Contains(log, "/services/") {
		t.Errorf("log leaks the URL:\n%s", log)
	}
}

// Per-policy sinks get that policy's events on top of the daemon-level ones, and a reload
// keeps an unchanged sink (its queue and counters) while it replaces a changed one.
func TestPolicySinksAndReload(t *testing.T) {
	daemonSrv, daemonGot := receiver(t, http.StatusOK)
	policySrv, policyGot := receiver(t, http.StatusOK)
	cfg := load(t, fmt.Sprintf(`
notify:
  - { name: all, webhook: { url: "%s" } }
`, daemonSrv.URL))
	own := load(t, fmt.Sprintf(`
notify:
  - { name: team, events: [scaled], webhook: { url: "%s" } }
`, policySrv.URL)).Notify
	cfg.Policies = []*configs.Policy{{Name: "workers", Notify: own}, {Name: "other"}}
	h := newHarness(t, cfg)

	h.n.Notify(scaled)
	other := scaled
	other.Policy = "other"
	h.n.Notify(other)
	h.n.Notify(Event{Kind: configs.EventConfigReloaded})
	for range 3 {
		wait(t, daemonGot)
	}
	var b struct{ Policy string }
	_ = json.Unmarshal(wait(t, policyGot).Body, &b)
	if b.Policy != "workers" {
		t.Errorf("policy sink got an event of %q", b.Policy)
	}
	eventually(t, "the policy sink's counter", func() bool { return testutil.ToFloat64(h.n.sent.WithLabelValues("workers/team")) == 1 })

	kept := h.n.daemon[0]
	if err := h.n.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if h.n.daemon[0] != kept {
		t.Error("an unchanged sink was rebuilt on reload")
	}
	cfg2 := load(t, fmt.Sprintf(`
notify:
  - { name: all, events: [paused], webhook: { url: "%s" } }
`, daemonSrv.URL))
	if err := h.n.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	if h.n.daemon[0] == kept {
		t.Error("a changed sink was kept")
	}
	// The removed policy sink's series go once its goroutine ends.
	eventually(t, "the removed sink's series to go", func() bool {
		n, _ := testutil.GatherAndCount(h.reg, "autoscalerd_notifications_sent_total")
		return n == 1
	})
	h.n.Notify(scaled)
	h.n.Notify(Event{Kind: configs.EventPaused, Policy: "workers", From: 4, To: 4})
	var p struct{ Event string }
	_ = json.Unmarshal(wait(t, daemonGot).Body, &p)
	if p.Event != "paused" {
		t.Errorf("after the reload the sink got %q, want only paused", p.Event)
	}
}

func TestNilNotifier(t *testing.T) {
	var n *Notifier
	n.Notify(scaled)
	if err := n.Apply(&configs.Config{}); err != nil {
		t.Fatal(err)
	}
	n.Close(context.Background())
}
