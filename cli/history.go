package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/spf13/cobra"
)

// historyCmd prints the decision log. It asks the running daemon (GET /v1/decisions),
// so it works wherever `status` does, or, with --state-dir, reads the log's files
// directly: for a daemon that is stopped, or from a copy of its state_dir.
func (a *app) historyCmd() *cobra.Command {
	var addr, stateDir, pol, since, until, format string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Print the decisions of the decision log (scaling actions, failures, sampled holds)",
		Long: `Prints the decision log, oldest first: every decision that changed a replica count,
every one that failed, pauses and resumes, and the sampled holds.

By default it asks the running daemon at --addr. With --state-dir it reads the files under
STATE_DIR/decisions itself, which works while the daemon is stopped.

--since and --until take an RFC 3339 time (2026-12-02T02:10:00Z) or a duration before now (2h).`,
		Example: `  autoscalerd history --policy workers --since 2h
  autoscalerd history --since 2026-12-02T02:00:00Z --until 2026-12-02T02:30:00Z --format json
  autoscalerd history --state-dir /var/lib/autoscalerd --policy workers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--format %q: use table or json", format)}
			}
			if limit < 1 || limit > decisionlog.MaxLimit {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--limit %d: use 1 to %d", limit, decisionlog.MaxLimit)}
			}
			var recs []decisionlog.Record
			if stateDir != "" {
				now := time.Now()
				q := decisionlog.Query{Policy: pol, Limit: limit}
				var err error
				if q.Since, err = decisionlog.ParseTime(since, now); err != nil {
					return &exitError{code: exitInvalid, err: fmt.Errorf("--since: %w", err)}
				}
				if q.Until, err = decisionlog.ParseTime(until, now); err != nil {
					return &exitError{code: exitInvalid, err: fmt.Errorf("--until: %w", err)}
				}
				if recs, err = decisionlog.Read(decisionlog.DirIn(stateDir), q); err != nil {
					return &exitError{code: exitFatal, err: err}
				}
			} else {
				v := url.Values{}
				v.Set("limit", strconv.Itoa(limit))
				if since != "" {
					v.Set("since", since)
				}
				if until != "" {
					v.Set("until", until)
				}
				path := "/v1/decisions?"
				if pol != "" {
					path = "/v1/policies/" + url.PathEscape(pol) + "/decisions?"
				}
				var out struct {
					Decisions []decisionlog.Record `json:"decisions"`
				}
				if err := getJSON(cmd.Context(), addr, path+v.Encode(), &out); err != nil {
					return err
				}
				recs = out.Decisions
			}
			if format == "json" {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if recs == nil {
					recs = []decisionlog.Record{}
				}
				return enc.Encode(recs)
			}
			return printHistory(a, recs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "the daemon's HOST:PORT (default $AUTOSCALERD_LISTEN, then 127.0.0.1:9090)")
	f.StringVar(&stateDir, "state-dir", "", "read the decision log under this state_dir instead of asking the daemon")
	f.StringVar(&pol, "policy", "", "only this policy's decisions")
	f.StringVar(&since, "since", "", "only decisions at or after this time (RFC 3339, or a duration before now such as 2h)")
	f.StringVar(&until, "until", "", "only decisions at or before this time")
	f.IntVar(&limit, "limit", decisionlog.DefaultLimit, "at most this many (the newest)")
	f.StringVar(&format, "format", "table", "table or json")
	return cmd
}

func printHistory(a *app, recs []decisionlog.Record) error {
	if len(recs) == 0 {
		fmt.Fprintln(a.stdout, "no decisions in that range")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPOLICY\tACTION\tFROM\tTO\tREASON")
	for _, r := range recs {
		action := r.Action
		var notes []string
		if r.Failed {
			notes = append(notes, "failed")
		}
		if r.DryRun {
			notes = append(notes, "dry-run")
		}
		if r.Sampled {
			notes = append(notes, "sampled")
		}
		if len(notes) > 0 {
			action += " (" + strings.Join(notes, ",") + ")"
		}
		reason := r.Reason
		if r.Error != "" && !strings.Contains(reason, r.Error) {
			reason += " [" + r.Error + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", r.Time.Local().Format("2006-01-02 15:04:05"), r.Policy, action, r.From, r.To, shorten(reason, 140))
	}
	return tw.Flush()
}
