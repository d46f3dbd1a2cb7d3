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
	var wide bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the running daemon's policies as a table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []statusRow
			if err := getJSON(cmd.Context(), addr, "/v1/policies", &ps); err != nil {
				return err
			}
			width := 0 // unlimited
			if !wide {
				width = terminalWidth()
			}
			return renderStatus(a.stdout, ps, width)
		},
	}
	cmd.Flags().BoolVar(&wide, "wide", false, "do not shorten targets and reasons to the terminal's width")
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

// statusRow is a policy as /v1/policies gives it.
type statusRow struct {
	engine.Status
	Role string `json:"role"`
}

// renderStatus prints the policies as a table no wider than width (0: no limit). The
// target and the reason give way: the target keeps its kind and the end of its key, the
// reason its end, where the decision is.
func renderStatus(w io.Writer, ps []statusRow, width int) error {
	rows := [][]string{{"POLICY", "TARGET", "CURRENT", "DESIRED", "MIN", "MAX", "STATE", "LAST DECISION"}}
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
			last = fmt.Sprintf("%s %s %d→%d: %s", d.Time.Local().Format("15:04:05"), d.Action, d.From, d.To, d.Reason)
		}
		rows = append(rows, []string{p.Name, p.Target, strconv.Itoa(p.Current), desired, strconv.Itoa(p.Min), strconv.Itoa(p.Max), strings.Join(state, ","), last})
	}
	if width > 0 {
		fit(rows, width)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fit shortens the target (column 1) to at most 40 runes and the last column so that every
// row fits in width.
func fit(rows [][]string, width int) {
	const maxTarget = 40
	for _, r := range rows[1:] {
		r[1] = shortenMiddle(r[1], maxTarget)
	}
	used := 0 // the widest row without its last column
	for c := 0; c < len(rows[0])-1; c++ {
		w := 0
		for _, r := range rows {
			w = max(w, len([]rune(r[c])))
		}
		used += w + 2
	}
	room := max(width-used, 20)
	for _, r := range rows[1:] {
		r[len(r)-1] = shorten(r[len(r)-1], room)
	}
}

// terminalWidth is $COLUMNS, or 120.
func terminalWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 40 {
		return n
	}
	return 120
}

// shortenMiddle keeps the start (the kind) and the end of s.
func shortenMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := n / 3
	return string(r[:head]) + "…" + string(r[len(r)-(n-head-1):])
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
