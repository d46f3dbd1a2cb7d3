package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/autoscalerd/autoscalerd/engine"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/spf13/cobra"
)

func (a *app) statusCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the running daemon's policies as a table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = os.Getenv("AUTOSCALERD_LISTEN")
			}
			if addr == "" {
				addr = configs.DefaultListen
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/policies", nil)
			if err != nil {
				return &exitError{code: exitFatal, err: err}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd at %s is unreachable: %w", addr, err)}
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd at %s answered %s", addr, resp.Status)}
			}
			var ps []struct {
				engine.Status
				Role string `json:"role"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
				return &exitError{code: exitFatal, err: fmt.Errorf("reading the answer of %s: %w", addr, err)}
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "POLICY\tTARGET\tCURRENT\tDESIRED\tMIN\tMAX\tSTATE\tLAST DECISION")
			for _, p := range ps {
				desired := "-"
				if p.Desired != nil {
					desired = strconv.Itoa(*p.Desired)
				}
				var state []string
				if p.Role != "" {
					state = append(state, p.Role)
				}
				if p.Paused {
					state = append(state, "paused")
				}
				if p.DryRun {
					state = append(state, "dry-run")
				}
				if n := draining(p.Draining); n > 0 {
					state = append(state, fmt.Sprintf("draining %d", n))
				}
				if p.LastError != "" {
					state = append(state, "error")
				}
				if len(state) == 0 {
					state = append(state, "ok")
				}
				last := "-"
				if d := p.LastDecision; d != nil {
					last = fmt.Sprintf("%s %s %d→%d: %s", d.Time.Local().Format("15:04:05"), d.Action, d.From, d.To, shorten(d.Reason, 100))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", p.Name, p.Target, p.Current, desired, p.Min, p.Max, strings.Join(state, ","), last)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "the daemon's HOST:PORT (default $AUTOSCALERD_LISTEN, then "+configs.DefaultListen+")")
	return cmd
}

// draining counts the drains in progress (the status also lists recently ended ones).
func draining(ds []engine.DrainView) int {
	n := 0
	for _, d := range ds {
		if !d.State.Over() {
			n++
		}
	}
	return n
}

// shorten keeps the end of a reason chain, where the decision is.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// versionLine is what `autoscalerd version` and `--version` print.
func versionLine() string {
	return fmt.Sprintf("autoscalerd %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(a.stdout, versionLine())
		},
	}
}
