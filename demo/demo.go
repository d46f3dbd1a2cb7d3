// Package demo is the built-in demo: a small work queue served over HTTP whose arrival
// rate rises and falls, and the worker that drains it. `autoscalerd` with no configuration
// runs the embedded config against them, so a newcomer sees scaling within a minute.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Config is the demo's autoscalerd.yaml.
//
//go:embed autoscalerd.yaml
var Config []byte

// Period is how long one rise and fall of the demo load takes.
const Period = 3 * time.Minute

// Queue is the demo work queue. Items arrive at a rate that swings between 10 and 250 per
// second; workers take them in small batches.
type Queue struct {
	mu      sync.Mutex
	queued  float64
	taken   int64
	last    time.Time
	started time.Time
}

func (q *Queue) rate(t time.Time) float64 {
	phase := 2 * math.Pi * t.Sub(q.started).Seconds() / Period.Seconds()
	return 10 + 240*(0.5-0.5*math.Cos(phase))
}

// advance adds the items that arrived since the last call.
func (q *Queue) advance(now time.Time) {
	dt := now.Sub(q.last).Seconds()
	q.queued += q.rate(now) * dt
	q.last = now
}

// Serve starts the queue's HTTP server on a free loopback port and returns its URL. The
// server stops when ctx ends; wait blocks until it has.
func Serve(ctx context.Context) (url string, wait func(), err error) {
	now := time.Now()
	q := &Queue{last: now, started: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		q.advance(time.Now())
		out := map[string]any{"queued": math.Floor(q.queued), "arrival_per_second": math.Round(q.rate(time.Now())), "taken": q.taken}
		q.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /take", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		q.mu.Lock()
		q.advance(time.Now())
		got := min(float64(n), math.Floor(q.queued))
		q.queued -= got
		q.taken += int64(got)
		q.mu.Unlock()
		fmt.Fprintf(w, "%d\n", int(got))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo queue: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return "http://" + ln.Addr().String(), func() { <-done }, nil
}

// Work is the demo worker: it takes up to 5 items every 200 ms (25 per second) until ctx
// ends, the way a real worker polls its queue.
func Work(ctx context.Context, queueURL string, log func(string)) error {
	client := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var done int
	report := time.Now()
	for {
		select {
		case <-ctx.Done():
			log(fmt.Sprintf("stopping after %d items", done))
			return nil
		case <-t.C:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, queueURL+"/take?n=5", nil)
		resp, err := client.Do(req)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				continue
			}
			return fmt.Errorf("demo worker: %w", err)
		}
		var n int
		fmt.Fscan(resp.Body, &n)
		resp.Body.Close()
		done += n
		if time.Since(report) > 20*time.Second {
			log(fmt.Sprintf("processed %d items so far", done))
			report = time.Now()
		}
	}
}
