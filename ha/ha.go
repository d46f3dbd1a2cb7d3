// Package ha elects one leader among several autoscalerd daemons, so that only one of
// them scales while the others stand by (a Nomad system job runs one daemon per node).
package ha

import "context"

// Elector campaigns for leadership.
type Elector interface {
	// Run campaigns until ctx ends. Each time leadership is won it calls lead with a
	// context that is cancelled the moment leadership is lost (or ctx ends), and waits for
	// lead to return before campaigning again. When ctx ends it releases leadership if
	// held. It returns nil after a clean stop.
	Run(ctx context.Context, lead func(ctx context.Context)) error
	// IsLeader reports whether this daemon leads right now (for /readyz, the status page
	// and metrics).
	IsLeader() bool
}
