package policy

import (
	"fmt"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
)

// function is one of the expression's functions (SPEC §2.3). The math functions are
// expr-lang's own builtins; a window function reads the policy's own sample history and
// is written fn(query, window), e.g. avg_over(cpu, 5m).
type function struct {
	name string
	// window computes a window function from the query's samples in the window (at least
	// one); nil for the math functions.
	window func(query string, xs []Sample) (float64, error)
}

// functions is the one list of the expression's functions, in the order the docs list
// them: the compiler's scope, its hints, the reserved query names and the evaluation all
// come from it.
var functions = []function{
	{name: "ceil"}, {name: "floor"}, {name: "round"}, {name: "min"}, {name: "max"}, {name: "abs"},
	{name: "avg_over", window: func(_ string, xs []Sample) (float64, error) {
		sum := 0.0
		for _, x := range xs {
			sum += x.V
		}
		return sum / float64(len(xs)), nil
	}},
	{name: "max_over", window: func(_ string, xs []Sample) (float64, error) {
		m := xs[0].V
		for _, x := range xs[1:] {
			m = max(m, x.V)
		}
		return m, nil
	}},
	{name: "min_over", window: func(_ string, xs []Sample) (float64, error) {
		m := xs[0].V
		for _, x := range xs[1:] {
			m = min(m, x.V)
		}
		return m, nil
	}},
	{name: "rate", window: func(q string, xs []Sample) (float64, error) {
		if len(xs) < 2 {
			return 0, fmt.Errorf("rate(%s): needs two samples in the window", q)
		}
		first, last := xs[0], xs[len(xs)-1]
		return (last.V - first.V) / last.T.Sub(first.T).Seconds(), nil
	}},
}

// keywords are expr-lang's own names, which a query cannot take either.
var keywords = []string{"nil", "true", "false", "in", "not", "and", "or", "len", "let", "matches", "contains"}

// funcNames lists the functions for hints.
func funcNames() []string {
	out := make([]string, len(functions))
	for i, f := range functions {
		out[i] = f.name
	}
	return out
}

// windowFunc returns the window function called name, if there is one.
func windowFunc(name string) (function, bool) {
	for _, f := range functions {
		if f.name == name && f.window != nil {
			return f, true
		}
	}
	return function{}, false
}

// reserved reports whether a query cannot be called name: the expression already has
// something by that name.
func reserved(name string) bool {
	if name == varCurrent {
		return true
	}
	for _, f := range functions {
		if f.name == name {
			return true
		}
	}
	for _, k := range keywords {
		if k == name {
			return true
		}
	}
	return false
}

// checkQueryNames reports queries whose name the expression already uses.
func checkQueryNames(pc *configs.Policy) configs.Errors {
	var errs configs.Errors
	for _, q := range pc.Queries {
		if reserved(q.Name) {
			errs.Add(q.Pos, configs.JoinPath(pc.Path, "queries."+q.Name), "%q is a reserved name in expressions; choose another query name", q.Name)
		}
	}
	return errs
}

// hintFuncs is the list of functions as an error message shows it.
func hintFuncs() string { return strings.Join(funcNames(), ", ") }
