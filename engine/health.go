package engine

import (
	"log/slog"
	"time"
)

// readyAfterFailures is how many consecutive failed ticks of a target make the daemon
// unready (/readyz): one failure is a blip, three are an outage worth a restart or a page.
const readyAfterFailures = 3

// health follows one thing a policy depends on (its target, a query, the state store)
// across ticks, so the log says when it starts failing and when it recovers, once per
// transition rather than once per tick.
type health struct {
	what      string // "target", `query "queued"`, "state save"
	failing   bool
	since     time.Time
	failures  int // consecutive
	lastError string
}

// fail records a failed tick; it logs a warning when this starts an outage.
func (h *health) fail(log *slog.Logger, now time.Time, err error) {
	h.failures++
	h.lastError = err.Error()
	if h.failing {
		log.Debug(h.what+" still failing", "err", err, "failures", h.failures)
		return
	}
	h.failing, h.since = true, now
	log.Warn(h.what+" failing", "err", err)
}

// ok records a good tick; it logs when this ends an outage.
func (h *health) ok(log *slog.Logger, now time.Time) {
	if h.failing {
		log.Info(h.what+" recovered", "failed_for", now.Sub(h.since).Round(time.Second).String(), "failures", h.failures, "last_err", h.lastError)
	}
	h.failing, h.failures, h.lastError = false, 0, ""
}
