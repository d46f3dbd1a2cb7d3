package cli

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/spf13/cobra"
)

// configSample is `autoscalerd sample config`: a whole configuration to start from.
//
//go:embed config.sample.yaml
var configSample string

func (a *app) sampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sample [KIND|config]",
		Short: "Print the sample configuration of a query or target kind, or (config) a whole configuration (without an argument: list the kinds)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprintf(a.stdout, "query kinds:  %s\ntarget kinds: %s\nsample config: a whole configuration\n", strings.Join(sources.Kinds(), ", "), strings.Join(targets.Kinds(), ", "))
				return nil
			}
			if args[0] == "config" {
				fmt.Fprint(a.stdout, configSample)
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
			all := slices.Concat(sources.Kinds(), targets.Kinds(), []string{"config"})
			return &exitError{code: exitInvalid, err: fmt.Errorf("no kind %q%s (query kinds: %s; target kinds: %s; or config)", args[0], configs.DidYouMean(args[0], all), strings.Join(sources.Kinds(), ", "), strings.Join(targets.Kinds(), ", "))}
		},
	}
}
