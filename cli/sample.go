package cli

import (
	"fmt"
	"strings"

	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/spf13/cobra"
)

func (a *app) sampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sample [KIND]",
		Short: "Print the sample configuration of a query or target kind (without KIND: list the kinds)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprintf(a.stdout, "query kinds:  %s\ntarget kinds: %s\n", strings.Join(sources.Kinds(), ", "), strings.Join(targets.Kinds(), ", "))
				return nil
			}
			if s, ok := sources.Sample(args[0]); ok {
				fmt.Fprint(a.stdout, s)
				return nil
			}
			if s, ok := targets.Sample(args[0]); ok {
				fmt.Fprint(a.stdout, s)
				return nil
			}
			return &exitError{code: exitInvalid, err: fmt.Errorf("no kind %q (query kinds: %s; target kinds: %s)", args[0], strings.Join(sources.Kinds(), ", "), strings.Join(targets.Kinds(), ", "))}
		},
	}
}
