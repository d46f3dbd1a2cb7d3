package policy_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	_ "github.com/autoscalerd/autoscalerd/sources/file"
	"github.com/autoscalerd/autoscalerd/targets"
)

// t0 is where the decision tests' fake clock starts: Monday 2024-01-01 00:00 UTC, so
// schedules see a definite weekday.
var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fail in a list of query values stands for a query that failed this tick.
var fail = math.NaN()

// errQuery is the error a failed query carries into Decide.
var errQuery = errors.New("connection refused")

// decideTarget is a target kind that exists only so test configs go through the real
// loader; Decide never touches a target.
type decideTarget struct {
	Name string `yaml:"name"`
}

func (d *decideTarget) TargetKey() string { return d.Name }

func init() {
	targets.Register("decidetest", "", func() *decideTarget { return &decideTarget{} },
		func(*decideTarget, targets.Deps) (targets.Target, error) {
			return nil, errors.New("the decision tests never build a target")
		})
}

// policyYAML wraps the body of one policy (YAML at column 0) into a config file whose
// queries are file queries with the given names.
func policyYAML(body string, queries ...string) string {
	var b strings.Builder
	b.WriteString("policies:\n  - name: p\n    target: { decidetest: { name: p } }\n")
	if len(queries) > 0 {
		b.WriteString("    queries:\n")
		for _, q := range queries {
			b.WriteString("      " + q + ": { file: { path: /dev/null } }\n")
		}
	}
	for _, line := range strings.Split(strings.Trim(body, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

// compile loads and compiles one policy through policy.Parse.
func compile(t testing.TB, body string, queries ...string) *policy.Policy {
	t.Helper()
	src := policyYAML(body, queries...)
	_, ps, err := policy.Parse("test.yaml", []byte(src), configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config:\n%s\n%v", src, err)
	}
	return ps[0]
}

// inputs turns query values into Decide's inputs; NaN is a failed query.
func inputs(cur int, vals []float64) policy.Inputs {
	in := policy.Inputs{Current: cur, Values: make([]policy.Value, len(vals))}
	for i, v := range vals {
		if math.IsNaN(v) {
			in.Values[i] = policy.Value{Err: errQuery}
		} else {
			in.Values[i] = policy.Value{V: v}
		}
	}
	return in
}

// rig drives one policy on the fake clock against an imaginary target that follows every
// decision at once (except in dry run, where nothing is touched).
type rig struct {
	t   testing.TB
	p   *policy.Policy
	st  policy.State
	cur int
}

// at runs the tick at t0+off.
func (r *rig) at(off time.Duration, vals ...float64) policy.Decision {
	r.t.Helper()
	var d policy.Decision
	d, r.st = policy.Decide(r.p, r.st, inputs(r.cur, vals), t0.Add(off))
	r.st.Commit(d) // the target always does what it is told
	if !r.p.DryRun {
		r.cur = d.To
	}
	return d
}

// step is one tick of a table test: at t0+at, with the query values vals, the count after
// the decision must be want and the reason must contain why. ext > 0 first changes the
// target to ext outside autoscalerd.
type step struct {
	at   time.Duration
	vals []float64
	ext  int
	want int
	why  string
}

// ticks returns a step every interval in [from, to], each expecting want.
func ticks(from, to, every time.Duration, want int, vals ...float64) []step {
	var out []step
	for at := from; at <= to; at += every {
		out = append(out, step{at: at, vals: vals, want: want})
	}
	return out
}

// seq concatenates steps and lists of steps.
func seq(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		default:
			panic("seq: step or []step")
		}
	}
	return out
}

func v(xs ...float64) []float64 { return xs }

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

// play runs steps and reports every tick that differs.
func (r *rig) play(steps []step) []policy.Decision {
	r.t.Helper()
	var ds []policy.Decision
	bad := 0
	for _, s := range steps {
		if bad >= 3 {
			r.t.Errorf("stopping after 3 wrong ticks")
			break
		}
		if s.ext > 0 {
			r.cur = s.ext
		}
		d := r.at(s.at, s.vals...)
		ds = append(ds, d)
		got := d.To
		if r.p.DryRun {
			got = r.cur
		}
		if got != s.want || (s.why != "" && !strings.Contains(d.Reason, s.why)) {
			bad++
		}
		if got != s.want {
			r.t.Errorf("t=%s: replicas %d, want %d\n  reason: %s", s.at, got, s.want, d.Reason)
		}
		if s.why != "" && !strings.Contains(d.Reason, s.why) {
			r.t.Errorf("t=%s: reason lacks %q\n  reason: %s", s.at, s.why, d.Reason)
		}
	}
	return ds
}
