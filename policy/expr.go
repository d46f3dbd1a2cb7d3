package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

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

// windowFuncs are the functions over the policy's own sample history.
var windowFuncs = map[string]bool{"avg_over": true, "max_over": true, "min_over": true, "rate": true}

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
	src, shifts := rewriteDurations(e.Src)
	env := checkEnv(queries)
	pt := &patcher{queries: map[string]bool{}, windows: map[string]time.Duration{}}
	for _, q := range queries {
		pt.queries[q] = true
	}
	opts := []expr.Option{expr.Env(env), expr.Patch(pt), expr.DisableBuiltin("now"), expr.DisableBuiltin("date")}
	if asBool {
		opts = append(opts, expr.AsBool())
	} else {
		opts = append(opts, expr.AsFloat64())
	}
	prog, err := expr.Compile(src, opts...)
	if len(pt.errs) > 0 {
		for _, pe := range pt.errs {
			errs.Add(exprPos(e, pe.line, unshift(pe.col, shifts)), path, "%s", pe.msg)
		}
		return nil, nil, errs
	}
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			errs.Add(exprPos(e, fe.Line, unshift(fe.Column, shifts)), path, "%s", cleanExprMsg(fe.Message))
		} else {
			errs.Add(e.Pos, path, "%v", err)
		}
		return nil, nil, errs
	}
	return &program{prog: prog, segments: splitSegments(e.Src, queries)}, pt.windows, nil
}

// exprPos maps a (1-based line, 0-based column) inside the expression to the file.
func exprPos(e configs.Expr, line, col int) configs.Pos {
	if !e.Inline || line != 1 {
		return e.Pos
	}
	p := e.Pos
	p.Col += col
	return p
}

func cleanExprMsg(m string) string {
	m = strings.ReplaceAll(m, varMin, "min")
	m = strings.ReplaceAll(m, varMax, "max")
	if name, ok := strings.CutPrefix(m, "unknown name "); ok {
		return fmt.Sprintf("unknown name %s: not a query of this policy, nor current, min or max", strings.TrimSpace(name))
	}
	return m
}

// checkEnv is the scope used for type checking; runtime scopes have the same keys.
func checkEnv(queries []string) map[string]any {
	env := map[string]any{varCurrent: 0.0, varMin: 0.0, varMax: 0.0}
	for _, q := range queries {
		env[q] = 0.0
	}
	for name := range windowFuncs {
		env[name] = windowStub
	}
	return env
}

// windowFn is the signature of the window functions after patching: the query's name and
// the window in seconds.
type windowFn = func(query string, seconds float64) (float64, error)

var windowStub windowFn = func(string, float64) (float64, error) { return 0, nil }

type patchErr struct {
	line, col int
	msg       string
}

// patcher renames the min/max variables and turns window-function calls
// `avg_over(queued, 5m)` into `avg_over("queued", 300)`.
type patcher struct {
	queries map[string]bool
	windows map[string]time.Duration
	callees map[ast.Node]bool
	errs    []patchErr
}

func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || !windowFuncs[id.Value] {
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
	loc := n.Location()
	p.errs = append(p.errs, patchErr{line: 1, col: loc.From, msg: fmt.Sprintf(format, args...)})
}

func (p *patcher) patchWindowCall(fn string, n *ast.CallNode) {
	if len(n.Arguments) != 2 {
		p.fail(n, "%s takes a query and a window, e.g. %s(queued, 5m)", fn, fn)
		return
	}
	q, ok := n.Arguments[0].(*ast.IdentifierNode)
	if !ok || !p.queries[q.Value] {
		p.fail(n.Arguments[0], "the first argument of %s must be the name of one of this policy's queries", fn)
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
				shifts = append(shifts, b.Len())
				b.WriteByte('"')
				b.WriteString(src[i:k])
				shifts = append(shifts, b.Len())
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

// unshift maps a column in the rewritten source back to the original: shifts holds the
// rewritten positions of the inserted quote characters.
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
	return windowFuncs[src[k:j]]
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
