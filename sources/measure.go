package sources

import (
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

// The values of `measure`, the same words in every queue kind that can report both how
// much work waits and how long the oldest of it has waited.
const (
	// MeasureCount is how many items wait (the kind's default).
	MeasureCount = "count"
	// MeasureOldestAge is how long the oldest waiting item has waited, in seconds; 0 when
	// nothing waits.
	MeasureOldestAge = "oldest_age"
)

// CheckMeasure reports a `measure` that is neither count nor oldest_age.
func CheckMeasure(ch *configs.Check, measure string) {
	if measure != MeasureCount && measure != MeasureOldestAge {
		ch.Errorf("measure", "%q is not a measure (use %s or %s)", measure, MeasureCount, MeasureOldestAge)
	}
}

// AgeSeconds is how long ago oldest was at now, in seconds. The two clocks are often not
// the same machine's (a server's timestamp, our clock, or a publisher's), so a timestamp
// slightly in the future is clock skew and reads as 0, not as a negative age that would
// fail the query.
func AgeSeconds(now, oldest time.Time) float64 {
	return max(now.Sub(oldest).Seconds(), 0)
}
