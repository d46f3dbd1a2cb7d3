package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// BenchmarkDecide measures one evaluation of a typical queue policy, without I/O: the
// expression, clamp, cooldowns, step, the reason chain and the history upkeep.
//
//	go test ./policy -run '^$' -bench BenchmarkDecide -benchmem
func BenchmarkDecide(b *testing.B) {
	p := compile(b, base+"step: { up: 10, down: 2 }\n", "queued")
	var st policy.State
	cur := 2
	now := t0
	depth := []float64{350, 350, 800, 800, 800, 1200, 1200, 400, 400, 400, 100, 100}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var d policy.Decision
		d, st = policy.Decide(p, st, inputs(cur, v(depth[i/50%len(depth)])), now)
		cur = d.To
		now = now.Add(10 * time.Second)
	}
}

// BenchmarkDecideWindow is BenchmarkDecide for a policy with a window function over 5
// minutes of its own samples.
func BenchmarkDecideWindow(b *testing.B) {
	body := strings.Replace(base, "replicas: ceil(queued / 100)", `replicas: "min_over(cpu, 5m) > 70 ? current + 1 : ceil(queued / 100)"`, 1)
	p := compile(b, body, "queued", "cpu")
	var st policy.State
	cur := 2
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var d policy.Decision
		d, st = policy.Decide(p, st, inputs(cur, v(float64(100*(i/50%12)), float64(50+i/30%40))), now)
		cur = d.To
		now = now.Add(10 * time.Second)
	}
}

// BenchmarkDecideSchedule is BenchmarkDecide with a business-hours schedule in another
// time zone, whose cron is consulted on every tick.
func BenchmarkDecideSchedule(b *testing.B) {
	p := compile(b, base+"schedule:\n  - { cron: \"0 8 * * MON-FRI\", duration: 10h, timezone: Europe/Berlin, min: 3 }\n", "queued")
	var st policy.State
	cur := 2
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var d policy.Decision
		d, st = policy.Decide(p, st, inputs(cur, v(float64(100*(i/50%12)))), now)
		cur = d.To
		now = now.Add(10 * time.Second)
	}
}
