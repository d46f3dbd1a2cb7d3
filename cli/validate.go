package cli

import (
	"fmt"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/spf13/cobra"
)

func (a *app) validateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration: every key, expression and reference; touches no source or target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := a.findConfig()
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			if path == "" {
				return &exitError{code: exitInvalid, err: fmt.Errorf("no configuration file found (give -c FILE, or set $AUTOSCALERD_CONFIG, or create ./autoscalerd.yaml)")}
			}
			cfg, ps, err := a.load(path)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			// Building sources and targets resolves references; by contract it does no I/O.
			var errs configs.Errors
			for _, pc := range cfg.Policies {
				t, err := targets.New(pc.Target, targets.Deps{Policy: pc.Name, Global: cfg})
				if err != nil {
					errs.Add(pc.Target.Pos, configs.JoinPath(pc.Path, "target"), "%v", err)
					continue
				}
				for _, q := range pc.Queries {
					s, err := sources.New(q, sources.Deps{Policy: pc.Name, Shared: sources.NewShared(), Target: t, Global: cfg})
					if err != nil {
						errs.Add(q.Pos, configs.JoinPath(pc.Path, "queries."+q.Name), "%v", err)
						continue
					}
					_ = sources.Close(s)
				}
				if c, ok := t.(targets.Closer); ok {
					_ = c.Close(cmd.Context())
				}
			}
			if err := errs.Err(); err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			fmt.Fprintf(a.stdout, "%s: valid (%d policies)\n", displayPath(path), len(ps))
			return nil
		},
	}
	return cmd
}
