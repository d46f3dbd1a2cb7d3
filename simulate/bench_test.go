package simulate_test

import (
	"math"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/simulate"
)

// weekPolicy is a queue policy with a business-hours schedule, ticking every 10 s.
const weekPolicy = `
policies:
  - name: workers
    target: { sim: { name: week } }
    min: 1
    max: 50
    interval: 10s
    queries:
      queued: { file: { path: /dev/null } }
    replicas: ceil(queued / 100)
    cooldown: { up: 30s, down: 5m }
    step: { up: "100%", down: 5 }
    schedule:
      - { cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 5 }
`

// weekTrace is a week of queue depth, one row a minute: a daily wave with bursts.
func weekTrace() *simulate.Trace {
	tr := &simulate.Trace{Columns: []string{"queued"}}
	for m := range 7 * 24 * 60 {
		day := math.Sin(float64(m) / (24 * 60) * 2 * math.Pi)
		depth := math.Max(0, 2000*day+float64(m*7919%1500))
		tr.Times = append(tr.Times, simulate.Epoch.Add(time.Duration(m)*time.Minute))
		tr.Values = append(tr.Values, []float64{depth})
	}
	return tr
}

// BenchmarkSimulateWeek replays a week at 10 s resolution (60,480 ticks).
//
//	go test ./simulate -run '^$' -bench BenchmarkSimulateWeek -benchmem
func BenchmarkSimulateWeek(b *testing.B) {
	cfg, err := configs.Parse("week.yaml", []byte(weekPolicy), configs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr := weekTrace()
	b.ReportAllocs()
	for b.Loop() {
		ticks, err := simulate.Run(ps[0], tr, simulate.Options{StartReplicas: -1, Until: 7*24*time.Hour - 10*time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if len(ticks) != 60480 {
			b.Fatalf("%d ticks, want 60480", len(ticks))
		}
	}
}
