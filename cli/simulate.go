package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/simulate"
	"github.com/spf13/cobra"
)

func (a *app) simulateCmd() *cobra.Command {
	var (
		name, tracePath, format, svgPath string
		startReplicas                    int
		until                            time.Duration
		pool                             simulate.Pool
		poolThroughput                   string
	)
	cmd := &cobra.Command{
		Use:   "simulate --policy NAME --trace FILE.csv",
		Short: "Replay a recorded trace through one policy's decision pipeline on a virtual clock",
		Long: "Replays a CSV trace (header: time,<query>...; time in seconds from the start or RFC 3339; an empty\n" +
			"cell is a failed query) through the policy's full pipeline at its interval. Prints one row per tick:\n" +
			"time,<queries...>,raw,desired,replicas,reason. No source or target is touched.\n\n" +
			"With --pool-backlog the replay is closed-loop: the backlog query is not read from the trace but\n" +
			"computed from the arrival rate in the trace column --pool-arrivals (tasks/s) and the replicas the\n" +
			"policy runs, each completing --pool-throughput tasks/s (a number or a trace column), first in first\n" +
			"out. The summary line on stderr (replica-minutes, the tasks left waiting at the end and the\n" +
			"replica-minutes they take, worst wait, worst backlog) compares policies.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bad := func(err error) error { return &exitError{code: exitInvalid, err: err} }
			path, err := a.findConfig()
			if err != nil {
				return bad(err)
			}
			if path == "" {
				return bad(fmt.Errorf("no configuration file found (give -c FILE)"))
			}
			if format != "csv" && format != "table" {
				return bad(fmt.Errorf("--format %q: use csv or table", format))
			}
			_, ps, err := a.load(path, true) // touches nothing: no secrets needed
			if err != nil {
				return bad(err)
			}
			var p *policy.Policy
			var names []string
			for _, x := range ps {
				names = append(names, x.Name)
				if x.Name == name {
					p = x
				}
			}
			if p == nil {
				return bad(fmt.Errorf("--policy %q: no such policy (have: %s)", name, strings.Join(names, ", ")))
			}
			f, err := os.Open(tracePath)
			if err != nil {
				return bad(fmt.Errorf("--trace: %w", err))
			}
			defer f.Close()
			tr, err := simulate.ReadTrace(f, tracePath)
			if err != nil {
				return bad(err)
			}
			opts := simulate.Options{StartReplicas: startReplicas, Until: until}
			if pool.Backlog != "" {
				pool.ParseThroughput(poolThroughput)
				opts.Pool = &pool
			}
			ticks, err := simulate.Run(p, tr, opts)
			if err != nil {
				return bad(err)
			}
			if sum := simulate.Summarize(ticks, p.Interval); opts.Pool != nil {
				defer fmt.Fprintln(a.stderr, sum)
			} else {
				defer fmt.Fprintf(a.stderr, "replica-minutes %.1f\n", sum.ReplicaMinutes)
			}
			if format == "table" {
				err = simulate.WriteTable(a.stdout, p, ticks)
			} else {
				err = simulate.WriteCSV(a.stdout, p, ticks)
			}
			if err != nil {
				return &exitError{code: exitFatal, err: err}
			}
			if svgPath != "" {
				out, err := os.Create(svgPath)
				if err != nil {
					return bad(fmt.Errorf("--svg: %w", err))
				}
				defer out.Close()
				if err := simulate.WriteSVG(out, p, ticks); err != nil {
					return &exitError{code: exitFatal, err: err}
				}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&name, "policy", "", "the policy to replay (required)")
	fs.StringVar(&tracePath, "trace", "", "the trace CSV (required)")
	fs.StringVar(&format, "format", "csv", "csv or table")
	fs.StringVar(&svgPath, "svg", "", "also write a chart of the replay to this SVG file")
	fs.IntVar(&startReplicas, "start-replicas", -1, "the simulated target's count at the start")
	fs.Lookup("start-replicas").DefValue = "the policy's min" // not "-1", which only means "unset"
	fs.DurationVar(&until, "until", 0, "stop the replay this long after the first row (default: the last row)")
	fs.StringVar(&pool.Backlog, "pool-backlog", "", "closed loop: the query the simulated pool feeds with its backlog")
	fs.StringVar(&pool.Arrivals, "pool-arrivals", "arrive", "closed loop: the trace column with the arrival rate, tasks per second")
	fs.StringVar(&poolThroughput, "pool-throughput", "", "closed loop: tasks per replica per second, or the trace column that holds it")
	fs.StringVar(&pool.Counter, "pool-counter", "", "closed loop: a query to feed with the count of tasks arrived (for throughput.arrivals)")
	fs.StringVar(&pool.Age, "pool-age", "", "closed loop: a query to feed with the oldest waiting task's age in seconds")
	_ = cmd.MarkFlagRequired("policy")
	_ = cmd.MarkFlagRequired("trace")
	return cmd
}
