package simulate_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/simulate"
)

// The comparison of docs/drain.md: a synthetic pool whose replicas complete poolThroughput
// tasks a second each (the policies do not know it), fed by two traces of arrivals, run
// under drain policies and under ceil(queued / k) for every k; the promise is that no
// task waits longer than promise.
const (
	poolThroughput = 2.0
	promise        = 5 * time.Minute
)

// arrivalTraces are the traces of the comparison: arrivals per second, one row a minute.
func arrivalTraces() map[string]*simulate.Trace {
	rng := rand.New(rand.NewPCG(13, 1))
	bursts := &simulate.Trace{Columns: []string{"arrive"}}
	for m := 0; m < 12*60; m++ { // 12 hours: 5/s, with a 10-minute burst of 60/s every 2 hours
		rate := 5 + rng.Float64()*2
		if m%120 >= 60 && m%120 < 70 {
			rate = 60
		}
		bursts.Times = append(bursts.Times, simulate.Epoch.Add(time.Duration(m)*time.Minute))
		bursts.Values = append(bursts.Values, []float64{rate})
	}
	daily := &simulate.Trace{Columns: []string{"arrive"}}
	for m := 0; m < 2*24*60; m++ { // two days: 2/s at night, 38/s at the afternoon peak, noisy
		phase := 2 * math.Pi * float64(m) / (24 * 60)
		rate := max(0, 20-18*math.Cos(phase)+rng.NormFloat64()*3)
		daily.Times = append(daily.Times, simulate.Epoch.Add(time.Duration(m)*time.Minute))
		daily.Values = append(daily.Values, []float64{rate})
	}
	return map[string]*simulate.Trace{"bursts": bursts, "daily": daily}
}

func comparePolicy(t testing.TB, replicas, extra string, queries ...string) *policy.Policy {
	t.Helper()
	var b strings.Builder
	b.WriteString("policies:\n  - name: p\n    target: { sim: { name: p } }\n    min: 1\n    max: 200\n    interval: 15s\n    queries:\n")
	for _, q := range queries {
		b.WriteString("      " + q + ": { file: { path: /dev/null } }\n")
	}
	b.WriteString(extra)
	b.WriteString("    replicas: " + replicas + "\n")
	_, ps, err := policy.Parse("compare.yaml", []byte(b.String()), configs.Options{})
	if err != nil {
		t.Fatalf("%s\n%v", b.String(), err)
	}
	return ps[0]
}

func runPool(t testing.TB, p *policy.Policy, tr *simulate.Trace, counter string) simulate.Summary {
	t.Helper()
	pool := &simulate.Pool{Backlog: "queued", Arrivals: "arrive", Throughput: poolThroughput, Counter: counter}
	ticks, err := simulate.Run(p, tr, simulate.Options{StartReplicas: -1, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return simulate.Summarize(ticks, p.Interval)
}

// TestDrainComparison computes docs/drain-comparison.md's table and checks what it
// claims: on each trace, drain(queued, 5m) with an arrivals counter, which is not told the
// pool's throughput, keeps every wait within 5 minutes. It does NOT beat the cheapest
// ceil(queued / k) in replica-minutes (docs/drain.md says why); the table shows by how
// much it loses. Regenerate it with: go test ./simulate -run TestDrainComparison -args -update
func TestDrainComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("the comparison replays days of traces")
	}
	var table strings.Builder
	table.WriteString("| trace | policy | replica-minutes | worst wait | meets 5m |\n|---|---|---|---|---|\n")
	row := func(trace, name string, s simulate.Summary) {
		fmt.Fprintf(&table, "| %s | %s | %.0f | %s | %s |\n", trace, name, s.ReplicaMinutes, s.WorstAge.Round(time.Second),
			map[bool]string{true: "yes", false: "no"}[s.WorstAge <= promise])
	}
	traces := arrivalTraces()
	for _, name := range []string{"bursts", "daily"} {
		tr := traces[name]
		drain := runPool(t, comparePolicy(t, "drain(queued, 5m)", "    throughput: { prior: 4, arrivals: arrived }\n", "queued", "arrived"), tr, "arrived")
		drainBacklog := runPool(t, comparePolicy(t, "drain(queued, 5m)", "    throughput: { prior: 4 }\n", "queued"), tr, "")
		var best simulate.Summary
		bestK := 0
		for k := 10; k <= 1000; k += 10 {
			s := runPool(t, comparePolicy(t, fmt.Sprintf("ceil(queued / %d)", k), "", "queued"), tr, "")
			if s.WorstAge <= promise && (bestK == 0 || s.ReplicaMinutes < best.ReplicaMinutes) {
				best, bestK = s, k
			}
		}
		row(name, "`drain(queued, 5m)` with `throughput.arrivals`", drain)
		row(name, "`drain(queued, 5m)`, backlog only", drainBacklog)
		if bestK == 0 {
			fmt.Fprintf(&table, "| %s | no `ceil(queued / k)` for k in 10..1000 meets 5m | | | |\n", name)
		} else {
			row(name, fmt.Sprintf("`ceil(queued / %d)`, the cheapest k that meets 5m", bestK), best)
		}
		t.Logf("%s: drain+arrivals %v; drain %v; best fixed k=%d %v", name, drain, drainBacklog, bestK, best)
		if drain.WorstAge > promise {
			t.Errorf("%s: drain(queued, 5m) with arrivals let a task wait %s", name, drain.WorstAge)
		}
		if bestK != 600 {
			t.Errorf("%s: the cheapest fixed k that meets 5m is %d; the pool's throughput × 5m is 600", name, bestK)
		}
	}
	golden := "../docs/drain-comparison.md"
	got := table.String()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	doc, err := os.ReadFile("../docs/drain.md")
	if err != nil {
		t.Fatal(err)
	}
	if body := strings.SplitN(got, "\n", 3)[2]; !strings.Contains(string(doc), body) {
		t.Errorf("docs/drain.md does not show the table of %s; copy it there", golden)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("%s is out of date; run go test ./simulate -run TestDrainComparison -args -update\ngot:\n%s", golden, got)
	}
}
