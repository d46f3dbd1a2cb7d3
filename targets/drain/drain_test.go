package drain_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/process"
)

func TestPickOrder(t *testing.T) {
	now := time.Now()
	cs := []drain.Candidate{
		{Name: "1", Number: 1, Started: now.Add(-time.Hour), Busy: true},
		{Name: "2", Number: 2, Started: now.Add(-time.Minute)},
		{Name: "3", Number: 3, Started: now.Add(-2 * time.Minute)},
		{Name: "4", Number: 4, Started: now.Add(-time.Minute)},
		{Name: "5", Number: 5, Started: now.Add(-2 * time.Hour), Err: errors.New("connection refused"), Busy: true},
	}
	for k, want := range map[int][]string{
		1: {"3"},                     // idle, started first
		3: {"3", "4", "2"},           // same start: highest number first
		5: {"3", "4", "2", "5", "1"}, // then busy (a failed check counts as busy), oldest first
		9: {"3", "4", "2", "5", "1"},
	} {
		got, reasons := drain.Pick(cs, k, now)
		var names []string
		for _, c := range got {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("Pick(%d) = %v, want %v", k, names, want)
		}
		if len(reasons) != len(got) {
			t.Fatalf("Pick(%d): %d reasons for %d", k, len(reasons), len(got))
		}
		if k == 5 && (reasons[0] != "idle; started 2m ago" || !strings.HasPrefix(reasons[3], "busy check failed (connection refused), so counted as busy; started 2h ago")) {
			t.Errorf("reasons: %q", reasons)
		}
	}
}

func TestGetBusy(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		busy   bool
	}{
		{200, `{"busy": true}`, true},
		{200, `{"busy": false, "jobs": 0}`, false},
		{200, `working`, true},
		{204, ``, true},
		{503, `{"busy": true}`, false}, // not 2xx: idle, whatever it says
		{404, `not found`, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/busy" {
				t.Errorf("%s %s", r.Method, r.URL.Path)
			}
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
		}))
		got, err := drain.GetBusy(context.Background(), srv.Client(), srv.URL+"/busy")
		srv.Close()
		if err != nil || got != tc.busy {
			t.Errorf("%d %q: busy %v, %v; want %v", tc.status, tc.body, got, err, tc.busy)
		}
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, err := drain.GetBusy(context.Background(), http.DefaultClient, srv.URL); err == nil {
		t.Error("no answer is not an error")
	}
}

func TestPost(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	if err := drain.Post(context.Background(), srv.Client(), srv.URL+"/quiet"); err != nil {
		t.Error(err)
	}
	if err := drain.Post(context.Background(), srv.Client(), srv.URL+"/fail"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("a 500 answer: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls", calls.Load())
	}
}

func TestExitBusy(t *testing.T) {
	if b, err := drain.ExitBusy(0, nil); !b || err != nil {
		t.Errorf("exit 0: %v %v", b, err)
	}
	if b, err := drain.ExitBusy(1, nil); b || err != nil {
		t.Errorf("exit 1: %v %v", b, err)
	}
	if _, err := drain.ExitBusy(2, nil); err == nil {
		t.Error("exit 2 is not an error")
	}
	if _, err := drain.ExitBusy(-1, errors.New("not found")); err == nil {
		t.Error("a command that did not run is not an error")
	}
}

func TestWait(t *testing.T) {
	never := make(chan struct{})
	var polls atomic.Int32
	busyFor := func(n int32) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { return polls.Add(1) <= n, nil }
	}
	waited := 0
	out := drain.Wait(context.Background(), busyFor(3), time.Millisecond, time.Minute, never, never, func() { waited++ })
	if out.State != targets.DrainStopped || polls.Load() != 4 || waited != 1 {
		t.Errorf("idle after 3 busy polls: %+v, %d polls, waiting told %d times", out, polls.Load(), waited)
	}
	polls.Store(0)
	out = drain.Wait(context.Background(), busyFor(1<<30), time.Millisecond, 50*time.Millisecond, never, never, func() {})
	if out.State != targets.DrainTimedOut {
		t.Errorf("busy forever: %+v", out)
	}
	back := make(chan struct{})
	close(back)
	out = drain.Wait(context.Background(), busyFor(1<<30), time.Hour, time.Hour, never, back, func() {})
	if out.State != targets.DrainTakenBack {
		t.Errorf("taken back: %+v", out)
	}
	fail := func(context.Context) (bool, error) { return false, errors.New("refused") }
	out = drain.Wait(context.Background(), fail, time.Millisecond, 30*time.Millisecond, never, never, func() {})
	if out.State != targets.DrainTimedOut || out.LastErr == nil {
		t.Errorf("a failing probe is not idle: %+v", out)
	}
}

func TestBook(t *testing.T) {
	var b drain.Book
	now := time.Now()
	id := b.Start("3", "idle", now)
	b.Set(id, targets.DrainWaiting, now)
	if l := b.List(); len(l) != 1 || l[0].State != targets.DrainWaiting || !l[0].Ended.IsZero() {
		t.Fatalf("%+v", l)
	}
	b.Set(id, targets.DrainStopped, now.Add(time.Second))
	b.Set(id, targets.DrainTakenBack, now.Add(2*time.Second)) // over: stays stopped
	if l := b.List(); l[0].State != targets.DrainStopped || l[0].Ended.Sub(l[0].Since) != time.Second {
		t.Fatalf("%+v", l)
	}
	for i := range 40 {
		b.Set(b.Start(fmt.Sprint(i), "idle", now), targets.DrainStopped, now)
	}
	if l := b.List(); len(l) != 32 || l[len(l)-1].Replica != "39" {
		t.Errorf("kept %d ended drains (last %s), want the newest 32", len(l), l[len(l)-1].Replica)
	}
}

// TestDecodeOnAProcessTarget decodes a full block as the loader does.
func TestDecodeOnAProcessTarget(t *testing.T) {
	var cfg struct {
		Process process.Config `yaml:"process"`
	}
	err := plugintest.Decode(t, `process:
  command: [worker]
  stop_signal: TERM
  restart: always
  drain:
    busy: { http: { base_port: 9000, path: /busy } }
    quiet_signal: tstp
    resume: { exec: [worker-ctl, resume] }
    timeout: 20m
`, &cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Process.Drain
	if d == nil || d.Busy.HTTP.BasePort != 9000 || d.QuietSignal != "tstp" || !slices.Equal(d.Resume.Exec, []string{"worker-ctl", "resume"}) || d.TimeoutOrDefault() != 20*time.Minute || d.PollOrDefault() != drain.DefaultPoll {
		t.Errorf("decoded %+v", d)
	}
}

// TestWaitPastDeadline: a drain resumed after its deadline probes once: idle stops it,
// busy ends it as timed out.
func TestWaitPastDeadline(t *testing.T) {
	never := make(chan struct{})
	idle := func(ctx context.Context) (bool, error) { return false, ctx.Err() }
	if out := drain.Wait(context.Background(), idle, time.Second, -time.Minute, never, never, func() {}); out.State != targets.DrainStopped {
		t.Errorf("idle past the deadline: %+v", out)
	}
	busy := func(ctx context.Context) (bool, error) { return true, ctx.Err() }
	if out := drain.Wait(context.Background(), busy, time.Second, -time.Minute, never, never, func() {}); out.State != targets.DrainTimedOut || out.LastErr != nil {
		t.Errorf("busy past the deadline: %+v", out)
	}
}
