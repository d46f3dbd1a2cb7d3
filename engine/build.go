package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
)

// Built is a policy's target and sources, built from its configuration. Building does no
// I/O: connections open on first use, so validate can build everything and touch nothing.
type Built struct {
	Target targets.Target
	// Sources are in the order of the policy's queries.
	Sources []sources.Source
}

// BuildOptions are what building needs besides the policy's own configuration.
type BuildOptions struct {
	Logger *slog.Logger
	// Shared holds connections shared across queries, targets, policies and reloads; a
	// fresh one when nil.
	Shared *shared.Set
	// Target, when set, is reused instead of building the policy's target (a reload that
	// did not change it).
	Target targets.Target
}

// BuildError says which part of a policy failed to build, with its position.
type BuildError struct {
	Pos  configs.Pos
	Path string
	Err  error
}

func (e *BuildError) Error() string { return e.Err.Error() }
func (e *BuildError) Unwrap() error { return e.Err }

// Build builds a policy's target (unless o.Target is given) and its sources: the one way
// the engine, validate (Resolve) and the example tests turn configuration into plugins,
// and the one place that fills targets.Deps and sources.Deps. A plugin gets what some kind
// needs from the daemon's settings (docker.host) and nothing else: never the API token.
// On error nothing built is left open.
func Build(cfg *configs.Config, pc *configs.Policy, o BuildOptions) (*Built, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set := o.Shared
	if set == nil {
		set = shared.NewSet()
	}
	dockerHost := cfg.Docker.Host
	b := &Built{Target: o.Target}
	if b.Target == nil {
		t, err := targets.New(pc.Target, targets.Deps{Logger: log, Policy: pc.Name, Shared: set, DockerHost: dockerHost, StateDir: cfg.StateDir, MaxReplicas: pc.Max})
		if err != nil {
			return nil, &BuildError{Pos: pc.Target.Pos, Path: configs.JoinPath(pc.Path, "target"),
				Err: fmt.Errorf("policy %q: target %s: %w", pc.Name, pc.Target.Kind, err)}
		}
		b.Target = t
	}
	for _, q := range pc.Queries {
		src, err := sources.New(q, sources.Deps{Logger: log.With("query", q.Name), Policy: pc.Name, Shared: set, Target: b.Target, TargetKind: pc.Target.Kind, DockerHost: dockerHost})
		if err != nil {
			b.closeSources(log)
			if o.Target == nil {
				closeTarget(context.Background(), b.Target)
			}
			return nil, &BuildError{Pos: q.Pos, Path: configs.JoinPath(pc.Path, "queries."+q.Name),
				Err: fmt.Errorf("policy %q: query %q (%s): %w", pc.Name, q.Name, q.Kind, err)}
		}
		b.Sources = append(b.Sources, src)
	}
	return b, nil
}

func (b *Built) closeSources(log *slog.Logger) {
	for _, s := range b.Sources {
		if err := sources.Close(s); err != nil {
			log.Warn("closing query source", "err", err)
		}
	}
	b.Sources = nil
}

// Close closes what Build built, the target included.
func (b *Built) Close(ctx context.Context) {
	b.closeSources(slog.New(slog.DiscardHandler))
	closeTarget(ctx, b.Target)
}

func closeTarget(ctx context.Context, t targets.Target) {
	if c, ok := t.(targets.Closer); ok {
		_ = c.Close(ctx)
	}
}
