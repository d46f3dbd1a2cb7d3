// Package sources defines what a query kind implements. Each kind lives in its own folder
// (sources/<kind>) and registers itself from init() with Register, into the one registry
// (internal/plugin) that the loader also reads; sources/all imports them all.
//
// A kind's build function gets its decoded config and Deps (filled by engine.Build) and
// does no I/O: it takes its connection as a *shared.Conn (internal/shared), which dials on
// the first Value, is shared by key with every query that talks to the same server, and
// dials again on the next Value after a failure.
package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/plugin"
	"github.com/autoscalerd/autoscalerd/internal/shared"
)

// Source yields one number per evaluation. Value is called from one goroutine at a time
// per Source, but a Source may share connections with others through Deps.Shared (see
// internal/shared: opened on first use, shared by key, redialled after a failure).
type Source interface {
	Value(ctx context.Context) (float64, error)
}

// Current is implemented by sources that can sometimes tell their value without waiting
// on anything: a file known not to have changed since it was read. Current must return
// at once, without blocking I/O; ok false means the value is not known that way, and the
// engine reads it with Value, under the query's timeout, as always. Current may be called
// whenever Value may, never at the same time as it.
type Current interface {
	Current(ctx context.Context) (v float64, ok bool)
}

// Deps is what a source may use besides its own config: only what some kind needs,
// never the daemon's own secrets (its API token). The engine's build function fills it;
// a test may leave any field zero.
type Deps struct {
	Logger *slog.Logger
	// Policy and Query name the query, for error messages.
	Policy string
	Query  string
	// Shared holds connections and pools shared across queries, targets, policies and
	// reloads; nil gives the source connections of its own.
	Shared *shared.Set
	// Target is the policy's target, for sources that look at its replicas (docker_stats),
	// and TargetKind its kind ("compose"), for messages.
	Target     any
	TargetKind string
	// DockerHost is the daemon's docker.host ("" = DOCKER_HOST or the default socket).
	DockerHost string
}

// Log returns the source's logger, or one that discards when the caller gave none (a
// one-off read in validate or a test).
func (d Deps) Log() *slog.Logger { return plugin.Logger(d.Logger) }

// Register makes a query kind available, to the loader and to New, in the one plugin
// registry. newConfig returns a fresh config with its defaults; build turns a decoded,
// checked config into a Source without doing any I/O (connections are opened lazily, so
// `validate` touches nothing). sample is the kind's sample.conf, shown by its README and
// `autoscalerd sample`.
func Register[C any](name, sample string, newConfig func() *C, build func(cfg *C, deps Deps) (Source, error)) {
	plugin.Register(plugin.Query, name, sample, newConfig, build)
}

// Sample returns the sample config of a kind.
func Sample(name string) (string, bool) { return plugin.Sample(plugin.Query, name) }

// Kinds lists the registered query kinds.
func Kinds() []string { return plugin.Names(plugin.Query) }

// New builds the source for a query.
func New(q *configs.Query, deps Deps) (Source, error) {
	deps.Query = q.Name
	src, err, ok := plugin.Build[Deps, Source](plugin.Query, q.Kind, q.Config, deps)
	if !ok {
		return nil, fmt.Errorf("unknown query kind %q", q.Kind)
	}
	return src, err
}

// Read asks src for one value within timeout and checks it: NaN, infinite and negative
// values are errors, never numbers to scale on.
func Read(ctx context.Context, src Source, timeout time.Duration) (float64, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	v, err := src.Value(ctx)
	if err != nil {
		if timeout > 0 && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, fmt.Errorf("timed out after %s: %w", configs.FormatDuration(timeout), err)
		}
		return 0, err
	}
	return Check(v)
}

// Check refuses what is never a number to scale on: NaN, infinite and negative values.
func Check(v float64) (float64, error) {
	switch {
	case math.IsNaN(v):
		return 0, errors.New("value is NaN")
	case math.IsInf(v, 0):
		return 0, errors.New("value is infinite")
	case v < 0:
		return 0, fmt.Errorf("value %g is negative", v)
	}
	return v, nil
}

// Close closes src if it holds resources.
func Close(src Source) error {
	if c, ok := src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
