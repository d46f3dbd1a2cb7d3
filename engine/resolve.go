package engine

import (
	"context"
	"errors"

	"github.com/autoscalerd/autoscalerd/configs"
)

// Resolve builds every target and source of cfg the way the engine does, then closes them.
// By contract building does no I/O, so this touches nothing; it finds what only a built
// plugin can tell, such as a docker_stats query on a target without containers.
// `autoscalerd validate` runs it after loading and compiling.
func Resolve(ctx context.Context, cfg *configs.Config) configs.Errors {
	var errs configs.Errors
	for _, pc := range cfg.Policies {
		b, err := Build(cfg, pc, BuildOptions{})
		var be *BuildError
		switch {
		case errors.As(err, &be):
			errs.Add(be.Pos, be.Path, "%v", errors.Unwrap(be.Err))
		case err != nil:
			errs.Add(pc.Pos, pc.Path, "%v", err)
		default:
			b.Close(ctx)
		}
	}
	return errs
}
