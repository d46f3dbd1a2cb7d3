package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
)

// Plugins is what the plugins of one configuration are built with. It holds what some
// kind needs and nothing else: the daemon's API token never reaches a plugin.
type Plugins struct {
	// Logger is where plugins log, with "policy" (and "query") added; nil discards.
	Logger *slog.Logger
	// Shared holds the connections plugins share across queries, policies and reloads;
	// nil gives each plugin its own.
	Shared *shared.Set
	// DockerHost is the daemon's docker.host ("" = DOCKER_HOST or the default socket).
	DockerHost string
}

// PluginsFor returns what the plugins of cfg are built with, logging to log and sharing
// connections in set.
func PluginsFor(cfg *configs.Config, log *slog.Logger, set *shared.Set) Plugins {
	return Plugins{Logger: log, Shared: set, DockerHost: cfg.Docker.Host}
}

// Built is a policy's target and its sources, in the order of its queries.
type Built struct {
	Target  targets.Target
	Sources []sources.Source
}

// BuildError says which part of a policy could not be built.
type BuildError struct {
	Policy *configs.Policy
	Query  *configs.Query // nil when the target failed
	Err    error
}

func (e *BuildError) Error() string {
	if e.Query == nil {
		return fmt.Sprintf("policy %q: target %s: %v", e.Policy.Name, e.Policy.Target.Kind, e.Err)
	}
	return fmt.Sprintf("policy %q: query %q (%s): %v", e.Policy.Name, e.Query.Name, e.Query.Kind, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// Build builds pc's target and sources: the one place that fills targets.Deps and
// sources.Deps, used by the engine, by Resolve (`validate`) and by the example tests.
// keep, when not nil, is the target to use instead of building one (a reload that keeps
// it). Building does no I/O. When a part fails, Build closes whatever it built (never
// keep) and returns a *BuildError for the target, or one per failing query.
func Build(ctx context.Context, pc *configs.Policy, keep targets.Target, p Plugins) (*Built, error) {
	var log *slog.Logger
	if p.Logger != nil {
		log = p.Logger.With("policy", pc.Name)
	}
	b := &Built{Target: keep}
	if b.Target == nil {
		t, err := targets.New(pc.Target, targets.Deps{Logger: log, Policy: pc.Name, Shared: p.Shared, DockerHost: p.DockerHost})
		if err != nil {
			return nil, &BuildError{Policy: pc, Err: err}
		}
		b.Target = t
	}
	var errs []error
	for _, q := range pc.Queries {
		deps := sources.Deps{Policy: pc.Name, Shared: p.Shared, Target: b.Target, TargetKind: pc.Target.Kind, DockerHost: p.DockerHost}
		if log != nil {
			deps.Logger = log.With("query", q.Name)
		}
		src, err := sources.New(q, deps)
		if err != nil {
			errs = append(errs, &BuildError{Policy: pc, Query: q, Err: err})
			continue
		}
		b.Sources = append(b.Sources, src)
	}
	if len(errs) > 0 {
		b.closeSources()
		if keep == nil {
			closeTarget(ctx, b.Target)
		}
		return nil, errors.Join(errs...)
	}
	return b, nil
}

func (b *Built) closeSources() {
	for _, s := range b.Sources {
		_ = sources.Close(s)
	}
	b.Sources = nil
}
