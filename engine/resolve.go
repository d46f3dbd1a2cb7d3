package engine

import (
	"context"
	"errors"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
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

// CheckHost checks what the targets of cfg name on this machine (targets.HostChecker): a
// process target's command and dir. validate runs it on the machine the daemon will run
// on; unlike Resolve, its answer depends on the machine.
func CheckHost(cfg *configs.Config) configs.Errors {
	var errs configs.Errors
	for _, pc := range cfg.Policies {
		if hc, ok := pc.Target.Config.(targets.HostChecker); ok {
			for _, p := range hc.CheckHost() {
				errs.Add(pc.Target.Pos, configs.JoinPath(pc.Path, "target."+pc.Target.Kind+"."+p.Field), "%s", p.Msg)
			}
		}
	}
	return errs
}
