package simulate_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/simulate"
)

// fivePolicy is a policy held at 5 replicas, ticking every 10s, with the named queries
// (comma-separated; the replay feeds them) and replicas expression.
func fivePolicy(t *testing.T, queries, replicas string) *policy.Policy {
	t.Helper()
	var q strings.Builder
	for _, name := range strings.Split(queries, ", ") {
		fmt.Fprintf(&q, "      %s: { file: { path: /dev/null } }\n", name)
	}
	_, ps, err := policy.Parse("pool.yaml", []byte(`policies:
  - name: p
    target: { sim: { name: p } }
    min: 5
    max: 5
    interval: 10s
    queries:
`+q.String()+`    replicas: `+replicas+"\n"), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// TestPoolFIFO checks the closed-loop pool against numbers worked out by hand: 5 replicas
// completing 1 task/s each against 10 tasks/s arriving for 100s leave 500 waiting, the
// oldest of which arrived at 50s (the first 500 arrivals were served), so waited 50s.
func TestPoolFIFO(t *testing.T) {
	p := fivePolicy(t, "queued, waited", "queued + waited")
	tr := &simulate.Trace{Columns: []string{"arrive"},
		Times:  []time.Time{simulate.Epoch, simulate.Epoch.Add(100 * time.Second)},
		Values: [][]float64{{10}, {10}}}
	ticks, err := simulate.Run(p, tr, simulate.Options{StartReplicas: -1,
		Pool: &simulate.Pool{Backlog: "queued", Age: "waited", Arrivals: "arrive", Throughput: 1}})
	if err != nil {
		t.Fatal(err)
	}
	last := ticks[len(ticks)-1] // at 100s
	if q, w := last.Values[0].V, last.Values[1].V; q != 500 || math.Abs(w-50) > 1 {
		t.Fatalf("at 100s: backlog %v, oldest waited %vs; want 500 and 50s", q, w)
	}
	s := simulate.Summarize(ticks, p.Interval)
	if s.ReplicaMinutes != 5*float64(len(ticks))*10/60 || s.WorstAge < 50*time.Second || s.WorstAge > 56*time.Second {
		t.Fatalf("summary %v", s)
	}
	if _, err := simulate.Run(p, tr, simulate.Options{Pool: &simulate.Pool{Backlog: "queued", Arrivals: "nope", Throughput: 1}}); err == nil {
		t.Fatal("a pool column missing from the trace must be an error")
	}
}

// TestSummaryLeftover checks what a replay charges for the tasks left waiting at its end,
// worked out by hand: 5 replicas against 10 tasks/s, completing 1 task/s each for the
// first 100s (500 left waiting) and 2/s each from then (as many as arrive), ticks every
// 10s until 100s, so the pool runs until 110s. 500 tasks are left, which take 500 / 2 =
// 250 replica-seconds (4⅙ replica-minutes) at the throughput at the end; the replicas ran
// 5 × 110s (9⅙ replica-minutes).
func TestSummaryLeftover(t *testing.T) {
	p := fivePolicy(t, "queued", "queued")
	tr := &simulate.Trace{Columns: []string{"arrive", "tput"},
		Times:  []time.Time{simulate.Epoch, simulate.Epoch.Add(100 * time.Second)},
		Values: [][]float64{{10, 1}, {10, 2}}}
	pool := &simulate.Pool{Backlog: "queued", Arrivals: "arrive"}
	pool.ParseThroughput("tput")
	ticks, err := simulate.Run(p, tr, simulate.Options{StartReplicas: -1, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	s := simulate.Summarize(ticks, p.Interval)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if !near(s.ReplicaMinutes, 5*110.0/60) || !near(s.Leftover, 500) || !near(s.LeftoverMinutes, 250.0/60) || !near(s.Cost(), 5*110.0/60+250.0/60) {
		t.Fatalf("summary %+v, cost %v; want 9.1667 replica-minutes run, 500 left taking 4.1667, cost 13.3333", s, s.Cost())
	}
	// Without a pool nothing is known to be left.
	if s := simulate.Summarize([]simulate.Tick{{Replicas: 2}}, time.Minute); s.Leftover != 0 || s.Cost() != 2 {
		t.Fatalf("summary without a pool %+v, cost %v", s, s.Cost())
	}
}
