package cli

import (
	"fmt"
	"github.com/autoscalerd/autoscalerd/engine"

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
			cfg, ps, err := a.load(path, true) // touches nothing: no secrets needed
			if err != nil {
				printErrors(a.stderr, err)
				return &exitError{code: exitInvalid}
			}
			for _, note := range cfg.Notes {
				fmt.Fprintln(a.stderr, "note: "+note)
			}
			// Building sources and targets resolves references; by contract it does no I/O.
			errs := engine.Resolve(cmd.Context(), cfg)
			if err := errs.Err(); err != nil {
				printErrors(a.stderr, err)
				return &exitError{code: exitInvalid}
			}
			fmt.Fprintf(a.stdout, "%s: valid (%s)\n", displayPath(path), plural(len(ps), "policy", "policies"))
			return nil
		},
	}
	return cmd
}

// plural writes n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
