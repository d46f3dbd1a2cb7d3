package policy

import (
	"context"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
)

// Resolve builds every target and source of cfg the way the engine does, then closes them.
// By contract building does no I/O, so this touches nothing; it finds what only a built
// plugin can tell, such as a docker_stats query on a target without containers.
// `autoscalerd validate` runs it after loading and compiling.
func Resolve(ctx context.Context, cfg *configs.Config) configs.Errors {
	var errs configs.Errors
	plugins := PluginsFor(cfg, nil, shared.NewSet())
	for _, pc := range cfg.Policies {
		b, err := Build(ctx, pc, nil, plugins)
		if err != nil {
			for _, e := range flatten(err) {
				be := e.(*BuildError) // all Build returns
				switch {
				case be.Query == nil:
					errs.Add(pc.Target.Pos, configs.JoinPath(pc.Path, "target"), "%v", be.Err)
				default:
					errs.Add(be.Query.Pos, configs.JoinPath(pc.Path, "queries."+be.Query.Name), "%v", be.Err)
				}
			}
			continue
		}
		b.closeSources()
		closeTarget(ctx, b.Target)
	}
	return errs
}

// flatten undoes errors.Join; a single error is a list of one.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
