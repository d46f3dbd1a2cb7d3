package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// The expression's scope. `min` and `max` are both numbers (the policy's bounds) and
// functions, so the numbers live under hidden names and identifiers are renamed when
// compiling.
const (
	varCurrent = "current"
	varMin     = "__min"
	varMax     = "__max"
)

// program is a compiled expression with what the reason chain needs to show it.
type program struct {
	prog *vm.Program
	// segments is the source split around query identifiers, to print it with values
	// substituted: ceil(queued / 100) → ceil(350 / 100).
	segments []segment
}

type segment struct {
	text  string
	query int // index into the policy's queries, or -1 for literal text
}

// compileExpr compiles src against the policy's query names. It returns the program and,
// per query, the longest window a window function looks back over.
func compileExpr(e configs.Expr, path string, queries []string, asBool bool) (*program, map[string]time.Duration, configs.Errors) {
	var errs configs.Errors
	if !e.IsSet() {
		errs.Add(e.Pos, path, "is empty; write an expression, e.g. %s", exampleExpr(queries, asBool))
		return nil, nil, errs
	}
	src, shifts := rewriteDurations(e.Src)
	env := checkEnv(queries)
	pt := &patcher{queries: map[string]bool{}, order: queries, windows: map[string]time.Duration{}}
	for _, q := range queries {
		pt.queries[q] = true
	}
	// Only the functions of the one list: expr-lang's other builtins include loops over
	// collections (map, filter, reduce), string building and regexes, which let one
	// expression burn seconds of CPU on every tick. A range literal (1..1000000) is
	// refused by the patcher for the same reason.
	opts := []expr.Option{expr.Env(env), expr.Patch(pt), expr.DisableAllBuiltins(), expr.MaxNodes(maxExprNodes)}
	opts = append(opts, expr.EnableBuiltin("len")) // of a literal: bounded by the source
	for _, f := range functions {
		if f.window == nil {
			opts = append(opts, expr.EnableBuiltin(f.name))
		}
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	} else {
		opts = append(opts, expr.AsFloat64())
	}
	prog, err := expr.Compile(src, opts...)
	if len(pt.errs) > 0 {
		for _, pe := range pt.errs {
			errs.Add(e.PosAt(unshift(pe.from, shifts)), path, "%s", pe.msg)
		}
		return nil, nil, errs
	}
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			from := unshift(fe.From, shifts)
			msg, at := explainExprErr(fe.Message, e.Src, from, queries, asBool)
			errs.Add(e.PosAt(at), path, "%s", msg)
		} else {
			msg, _ := explainExprErr(err.Error(), e.Src, 0, queries, asBool)
			errs.Add(e.Pos, path, "%s", msg)
		}
		return nil, nil, errs
	}
	return &program{prog: prog, segments: splitSegments(e.Src, queries)}, pt.windows, nil
}

// explainExprErr rewrites expr's message for an operator: names they wrote (min, not
// __min), what they may write instead, and how to fix a wrong result type. from is the
// rune offset of the error in src; it returns the message and the offset to point at.
func explainExprErr(m, src string, from int, queries []string, asBool bool) (string, int) {
	m = strings.ReplaceAll(m, varMin, "min")
	m = strings.ReplaceAll(m, varMax, "max")
	runes := []rune(src)
	if name, ok := strings.CutPrefix(m, "unknown name "); ok {
		name = strings.TrimSpace(name)
		rest := ""
		if end := from + len([]rune(name)); end <= len(runes) {
			rest = strings.TrimSpace(string(runes[end:]))
		}
		switch {
		case name == "now" || name == "date":
			return fmt.Sprintf("%s is not available: a decision depends on the queries, not on the clock (for time-of-day rules use schedule:)", name), from
		case strings.HasPrefix(rest, "("):
			return fmt.Sprintf("unknown function %s%s; the functions are %s", name, configs.DidYouMean(name, funcNames()), hintFuncs()), from
		case len(queries) == 0:
			return fmt.Sprintf("unknown name %s: this policy has no queries; the expression can use current, min and max", name), from
		}
		return fmt.Sprintf("unknown name %s%s: the expression can use this policy's queries (%s), current, min and max",
			name, configs.DidYouMean(name, append(append([]string(nil), queries...), varCurrent)), strings.Join(queries, ", ")), from
	}
	if lit, ok := strings.CutPrefix(m, "bad number syntax: "); ok {
		lit = strings.Trim(lit, `"`)
		// expr points at the offending character; point at the literal instead.
		if i := strings.LastIndex(string(runes[:min(from+1, len(runes))]), lit); i >= 0 {
			from = len([]rune(src[:i]))
		}
		return fmt.Sprintf("%q is not a number (a window is written with a unit: 30s, 5m, 1h or 1d)", lit), from
	}
	if got, ok := strings.CutPrefix(m, "expected float64, but got "); ok {
		if got == "bool" {
			return "yields true or false, not a replica count; to choose between counts write cond ? a : b, e.g. queued > 100 ? current + 2 : current", from
		}
		return fmt.Sprintf("yields a %s, not a replica count (a number)", got), from
	}
	if got, ok := strings.CutPrefix(m, "expected bool, but got "); ok {
		if strings.HasPrefix(got, "float") || strings.HasPrefix(got, "int") {
			got = "number"
		}
		return fmt.Sprintf("yields a %s, not true or false; activation is a condition, e.g. %s", got, exampleExpr(queries, true)), from
	}
	if m == "unexpected token EOF" {
		return "the expression ends too early: a parenthesis is not closed, or an operand is missing", from
	}
	return m, from
}

// exampleExpr is an expression over the policy's own first query, for hints.
func exampleExpr(queries []string, asBool bool) string {
	q := "queued"
	if len(queries) > 0 {
		q = queries[0]
	}
	if asBool {
		return q + " > 0"
	}
	return "ceil(" + q + " / 100)"
}

// checkEnv is the scope used for type checking; runtime scopes have the same keys.
func checkEnv(queries []string) map[string]any {
	env := map[string]any{varCurrent: 0.0, varMin: 0.0, varMax: 0.0}
	for _, q := range queries {
		env[q] = 0.0
	}
	for _, f := range functions {
		if f.window != nil {
			env[f.name] = windowStub
		}
	}
	return env
}

// windowFn is the signature of the window functions after patching: the query's name and
// the window in seconds.
type windowFn = func(query string, seconds float64) (float64, error)

var windowStub windowFn = func(string, float64) (float64, error) { return 0, nil }

type patchErr struct {
	from int // rune offset in the rewritten source
	msg  string
}

// patcher renames the min/max variables and turns window-function calls
// `avg_over(queued, 5m)` into `avg_over("queued", 300)`.
type patcher struct {
	queries map[string]bool
	order   []string // the queries in file order, for messages
	windows map[string]time.Duration
	errs    []patchErr
}

func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator == ".." || n.Operator == "matches" {
			p.fail(n, "%q is not available in a replicas expression (its cost grows without bound); use arithmetic, comparisons, ?:, ?? and the functions %s", n.Operator, hintFuncs())
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		if _, isWindow := windowFunc(id.Value); !isWindow {
			return
		}
		p.patchWindowCall(id.Value, n)
	case *ast.IdentifierNode:
		switch n.Value {
		case "min":
			n.Value = varMin
		case "max":
			n.Value = varMax
		}
	}
}

func (p *patcher) fail(n ast.Node, format string, args ...any) {
	p.errs = append(p.errs, patchErr{from: leftmost(n), msg: fmt.Sprintf(format, args...)})
}

// leftmost is where the text of n starts: expr places a binary node at its operator,
// but `avg_over(queued / 100, 5m)` should point at queued.
func leftmost(n ast.Node) int {
	v := &leftmostVisitor{from: n.Location().From}
	ast.Walk(&n, v)
	return v.from
}

type leftmostVisitor struct{ from int }

func (v *leftmostVisitor) Visit(n *ast.Node) {
	if loc := (*n).Location(); loc.From >= 0 && loc.From < v.from {
		v.from = loc.From
	}
}

func (p *patcher) patchWindowCall(fn string, n *ast.CallNode) {
	if len(n.Arguments) != 2 {
		p.fail(n, "%s takes a query and a window, e.g. %s(queued, 5m)", fn, fn)
		return
	}
	q, ok := n.Arguments[0].(*ast.IdentifierNode)
	if !ok || !p.queries[q.Value] {
		if s, isStr := n.Arguments[0].(*ast.StringNode); isStr && p.queries[s.Value] {
			p.fail(n.Arguments[0], "write the query's name without quotes: %s(%s, ...)", fn, s.Value)
			return
		}
		p.fail(n.Arguments[0], "the first argument of %s must be the name of one of this policy's queries (%s); do arithmetic outside the call, e.g. %s(%s, 5m) / 100",
			fn, strings.Join(p.order, ", "), fn, p.queryIn(n.Arguments[0]))
		return
	}
	var window time.Duration
	switch w := n.Arguments[1].(type) {
	case *ast.StringNode:
		d, err := parseWindow(w.Value)
		if err != nil {
			p.fail(w, "%s: %v", fn, err)
			return
		}
		window = d
	case *ast.IntegerNode, *ast.FloatNode:
		p.fail(n.Arguments[1], "the window of %s needs a unit: write e.g. 30s, 5m or 1h, not a bare number", fn)
		return
	default:
		p.fail(n.Arguments[1], "the second argument of %s must be a duration such as 30s, 5m or 1h", fn)
		return
	}
	if window <= 0 {
		p.fail(n.Arguments[1], "%s: the window must be positive", fn)
		return
	}
	if window > maxWindow {
		p.fail(n.Arguments[1], "%s: a window of %s is longer than the %s history kept", fn, configs.FormatDuration(window), configs.FormatDuration(maxWindow))
		return
	}
	if window > p.windows[q.Value] {
		p.windows[q.Value] = window
	}
	name := &ast.StringNode{Value: q.Value}
	name.SetLocation(q.Location())
	secs := &ast.FloatNode{Value: window.Seconds()}
	secs.SetLocation(n.Arguments[1].Location())
	n.Arguments[0], n.Arguments[1] = name, secs
}

// queryIn names a query for an example: the first one used inside n, else the policy's
// first query.
func (p *patcher) queryIn(n ast.Node) string {
	v := &queryFinder{queries: p.queries}
	ast.Walk(&n, v)
	switch {
	case v.found != "":
		return v.found
	case len(p.order) > 0:
		return p.order[0]
	}
	return "queued"
}

type queryFinder struct {
	queries map[string]bool
	found   string
}

func (v *queryFinder) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && v.found == "" && v.queries[id.Value] {
		v.found = id.Value
	}
}

// maxExprNodes bounds an expression's size, and with it the cost of evaluating it.
const maxExprNodes = 2000

// maxWindow bounds the sample history a window function may ask for.
const maxWindow = 24 * time.Hour

func parseWindow(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(days, 64)
		if err == nil {
			return time.Duration(f * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 30s, 5m, 1h)", s)
	}
	return d, nil
}

// rewriteDurations turns duration literals (5m, 30s, 1.5h, 2d) outside string literals
// into string literals, which expr can parse. shifts records where quotes were inserted
// so error columns can be mapped back.
func rewriteDurations(src string) (string, []int) {
	if !strings.ContainsAny(src, "smhd") {
		return src, nil
	}
	var b strings.Builder
	var shifts []int
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		if quote != 0 {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(src) {
				i++
				b.WriteByte(src[i])
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if c == '"' || c == '\'' || c == '`' {
			quote = c
			b.WriteByte(c)
			continue
		}
		if isDigit(c) && (i == 0 || !isIdent(src[i-1]) && src[i-1] != '.') {
			j := i
			for j < len(src) && (isDigit(src[j]) || src[j] == '.') {
				j++
			}
			k := j
			for k < len(src) && isLetter(src[k]) {
				k++
			}
			unit := src[j:k]
			if (unit == "ms" || unit == "s" || unit == "m" || unit == "h" || unit == "d") && (k == len(src) || !isIdent(src[k])) {
				// expr reports positions in runes, so shifts are counted in runes too.
				shifts = append(shifts, utf8.RuneCountInString(b.String()))
				b.WriteByte('"')
				b.WriteString(src[i:k])
				shifts = append(shifts, utf8.RuneCountInString(b.String()))
				b.WriteByte('"')
				i = k - 1
				continue
			}
			b.WriteString(src[i:j])
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), shifts
}

// unshift maps a rune offset in the rewritten source back to the original: shifts holds
// the rewritten positions of the inserted quote characters.
func unshift(col int, shifts []int) int {
	orig := col
	for _, at := range shifts {
		if at < col {
			orig--
		}
	}
	return max(orig, 0)
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool  { return isLetter(c) || isDigit(c) || c == '_' }

// splitSegments splits src around whole-word query identifiers outside string literals.
func splitSegments(src string, queries []string) []segment {
	index := map[string]int{}
	for i, q := range queries {
		index[q] = i
	}
	var segs []segment
	start := 0
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if c == '"' || c == '\'' || c == '`' {
			quote = c
			continue
		}
		if !isIdent(c) || (i > 0 && (isIdent(src[i-1]) || src[i-1] == '.')) {
			continue
		}
		j := i
		for j < len(src) && isIdent(src[j]) {
			j++
		}
		if qi, ok := index[src[i:j]]; ok && !isWindowArg(src, i) {
			if start < i {
				segs = append(segs, segment{text: src[start:i], query: -1})
			}
			segs = append(segs, segment{query: qi})
			start = j
		}
		i = j - 1
	}
	if start < len(src) {
		segs = append(segs, segment{text: src[start:], query: -1})
	}
	return segs
}

// isWindowArg reports whether the identifier at i is the first argument of a window
// function, which names a query rather than using its value.
func isWindowArg(src string, i int) bool {
	j := i - 1
	for j >= 0 && src[j] == ' ' {
		j--
	}
	if j < 0 || src[j] != '(' {
		return false
	}
	k := j
	for k > 0 && isIdent(src[k-1]) {
		k--
	}
	_, ok := windowFunc(src[k:j])
	return ok
}

// render prints the expression with the query values substituted.
func (p *program) render(b *strings.Builder, values []Value) {
	for _, s := range p.segments {
		if s.query < 0 {
			b.WriteString(s.text)
			continue
		}
		if v := values[s.query]; v.Err == nil {
			b.WriteString(formatNum(v.V))
		} else {
			b.WriteString("nil")
		}
	}
}

func formatNum(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}
