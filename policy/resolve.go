package policy

import (
	"context"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
)

// Resolve builds every target and source of cfg the way the engine does, then closes them.
// By contract building does no I/O, so this touches nothing; it finds what only a built
// plugin can tell, such as a docker_stats query on a target without containers.
// `autoscalerd validate` runs it after loading and compiling.
func Resolve(ctx context.Context, cfg *configs.Config) configs.Errors {
	var errs configs.Errors
	for _, pc := range cfg.Policies {
		t, err := targets.New(pc.Target, targets.Deps{Policy: pc.Name, Global: cfg})
		if err != nil {
			errs.Add(pc.Target.Pos, configs.JoinPath(pc.Path, "target"), "%v", err)
			continue
		}
		for _, q := range pc.Queries {
			s, err := sources.New(q, sources.Deps{Policy: pc.Name, Shared: sources.NewShared(), Target: t, TargetKind: pc.Target.Kind, Global: cfg})
			if err != nil {
				errs.Add(q.Pos, configs.JoinPath(pc.Path, "queries."+q.Name), "%v", err)
				continue
			}
			_ = sources.Close(s)
		}
		if c, ok := t.(targets.Closer); ok {
			_ = c.Close(ctx)
		}
	}
	return errs
}
