package plugintest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric gathers g and returns the value of the first sample of metric whose labels
// include every one of labels (a gauge's or a counter's); ok is false when there is none.
func Metric(t testing.TB, g prometheus.Gatherer, metric string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
	samples:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, want := range labels {
				if have[k] != want {
					continue samples
				}
			}
			switch {
			case s.Gauge != nil:
				return s.GetGauge().GetValue(), true
			case s.Counter != nil:
				return s.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}
