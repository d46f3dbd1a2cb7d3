package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
)

// record is one log record the target wrote.
type record struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs map[string]any
}

// recorder is a slog.Handler that keeps every record, so tests can wait for what the
// target and its children logged.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recorder) WithGroup(string) slog.Handler            { return h }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := record{at: time.Now(), level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

// matching returns the records whose message matches re, in order.
func (h *recorder) matching(re string) []record {
	rx := regexp.MustCompile(re)
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []record
	for _, r := range h.recs {
		if rx.MatchString(r.msg) {
			out = append(out, r)
		}
	}
	return out
}

// waitN waits until at least n records match re and returns them.
func (h *recorder) waitN(t testing.TB, re string, n int, timeout time.Duration) []record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := h.matching(re)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %d log records matching %q, got %d; log:\n%s", timeout, n, re, len(got), h.dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *recorder) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.recs {
		fmt.Fprintf(&b, "  %s %s %s %v\n", r.at.Format("15:04:05.000"), r.level, r.msg, r.attrs)
	}
	return b.String()
}

// testTiming keeps restart tests fast.
var testTiming = timing{backoffMin: 50 * time.Millisecond, backoffMax: 400 * time.Millisecond, stableAfter: time.Hour, drain: time.Second}

// newTestTarget supervises copies of the test binary in the given child mode; env adds
// to the child's environment. The target is closed at the end of the test.
func newTestTarget(t testing.TB, mode string, env map[string]string, edit func(*Config), tm timing) (*target, *recorder) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Command = []string{self}
	cfg.StopTimeout = configs.Duration(5 * time.Second)
	cfg.Env = map[string]configs.Secret{childModeEnv: configs.NewSecret(mode)}
	for k, v := range env {
		cfg.Env[k] = configs.NewSecret(v)
	}
	if edit != nil {
		edit(cfg)
	}
	rec := &recorder{}
	tg, err := newTarget(cfg, targets.Deps{Logger: slog.New(rec), Policy: "pol"}, tm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := tg.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tg, rec
}

// pids returns the pid of each supervised replica's current child, by index.
func (t *target) pids() map[int]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int{}
	for i, r := range t.live {
		if pid := r.pid.Load(); pid != 0 {
			out[i] = int(pid)
		}
	}
	return out
}

// sortedPids lists pids in index order.
func sortedPids(m map[int]int) []int {
	idxs := make([]int, 0, len(m))
	for i := range m {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	out := make([]int, len(idxs))
	for i, idx := range idxs {
		out[i] = m[idx]
	}
	return out
}

func keys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// processGone reports whether pid has exited: no /proc entry, or a zombie nobody reaped
// yet (which runs no code and holds nothing but its pid).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	state, _, ok := parseStat(b)
	return ok && state == 'Z'
}

// waitGone waits until every pid has exited.
func waitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if !processGone(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still alive %s later", alive, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustStatus(t testing.TB, tg *target, want targets.Status) {
	t.Helper()
	got, err := tg.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if got != want {
		t.Fatalf("status = %+v, want %+v", got, want)
	}
}

// mustClose closes tg and fails if that took longer than within.
func mustClose(t testing.TB, tg *target, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*within)
	defer cancel()
	start := time.Now()
	if err := tg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > within {
		t.Errorf("close took %s, want at most %s", took, within)
	}
}

func mustScale(t testing.TB, tg *target, n int) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tg.Scale(ctx, n, targets.Reason{Policy: "pol", Message: "test"}); err != nil {
		t.Fatalf("scale to %d: %v", n, err)
	}
	return time.Since(start)
}

// readyIndexes returns the AUTOSCALER_REPLICA values reported by children that announced
// themselves, in order.
func readyIndexes(recs []record) []int {
	rx := regexp.MustCompile(`leader ready replica=(\d+)`)
	var out []int
	for _, r := range recs {
		if m := rx.FindStringSubmatch(r.msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}
