package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/autoscalerd/autoscalerd/engine"
	"io"
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
			var ps []struct {
				engine.Status
				Role string `json:"role"`
			}
			if err := getJSON(cmd.Context(), addr, "/v1/policies", &ps); err != nil {
				return err
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

// daemonAddr is the daemon's HOST:PORT: the flag, else $AUTOSCALERD_LISTEN, else the
// default listen address.
func daemonAddr(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("AUTOSCALERD_LISTEN"); env != "" {
		return env
	}
	return configs.DefaultListen
}

// getJSON reads path from the running daemon at addr (see daemonAddr) into out. Errors
// are exit code 1 (unreachable, or an answer other than 200, whose error it quotes).
func getJSON(ctx context.Context, addr, path string, out any) error {
	addr = daemonAddr(addr)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return &exitError{code: exitFatal, err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd at %s is unreachable: %w", addr, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && e.Error != "" {
			return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd at %s answered %s: %s", addr, resp.Status, e.Error)}
		}
		return &exitError{code: exitFatal, err: fmt.Errorf("autoscalerd at %s answered %s", addr, resp.Status)}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &exitError{code: exitFatal, err: fmt.Errorf("reading the answer of %s: %w", addr, err)}
	}
	return nil
}

// shorten keeps the end of a reason chain, where the decision is.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(a.stdout, "autoscalerd %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
