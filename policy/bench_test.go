package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// benchDecide runs Decide on a 10 s virtual clock, the target following every decision;
// vals gives the query values of tick i (built before the clock starts, so only Decide
// is measured).
func benchDecide(b *testing.B, p *policy.Policy, vals func(i int) []float64) {
	const cycle = 600
	ins := make([]policy.Inputs, cycle)
	for i := range ins {
		ins[i] = inputs(0, vals(i))
	}
	var st policy.State
	cur := 2
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := ins[i%cycle]
		in.Current = cur
		var d policy.Decision
		d, st = policy.Decide(p, st, in, now)
		st.Commit(d)
		cur = d.To
		now = now.Add(10 * time.Second)
	}
}

// queueWave is a queue depth that changes every 50 ticks, so the runs hold, scale up and
// scale down.
func queueWave(i int) float64 {
	depth := []float64{350, 350, 800, 800, 800, 1200, 1200, 400, 400, 400, 100, 100}
	return depth[i/50%len(depth)]
}

// BenchmarkDecide measures one evaluation of a typical queue policy, without I/O: the
// expression, clamp, cooldowns, step, the reason chain and the history upkeep.
//
//	go test ./policy -run '^$' -bench BenchmarkDecide -benchmem
func BenchmarkDecide(b *testing.B) {
	p := compile(b, base+"step: { up: 10, down: 2 }\n", "queued")
	benchDecide(b, p, func(i int) []float64 { return v(queueWave(i)) })
}

// BenchmarkDecideWindow is BenchmarkDecide for a policy with a window function over 5
// minutes of its own samples.
func BenchmarkDecideWindow(b *testing.B) {
	body := strings.Replace(base, "replicas: ceil(queued / 100)", `replicas: "min_over(cpu, 5m) > 70 ? current + 1 : ceil(queued / 100)"`, 1)
	p := compile(b, body, "queued", "cpu")
	benchDecide(b, p, func(i int) []float64 { return v(queueWave(i), float64(50+i/30%40)) })
}

// BenchmarkDecideSchedule is BenchmarkDecide with a business-hours schedule in another
// time zone, whose cron is consulted on every tick.
func BenchmarkDecideSchedule(b *testing.B) {
	p := compile(b, base+"schedule:\n  - { cron: \"0 8 * * MON-FRI\", duration: 10h, timezone: Europe/Berlin, min: 3 }\n", "queued")
	benchDecide(b, p, func(i int) []float64 { return v(queueWave(i)) })
}
