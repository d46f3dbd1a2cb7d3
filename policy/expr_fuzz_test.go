package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/autoscalerd/autoscalerd/configs"
)

// exprLine finds single-line expressions in the config corpus, to seed FuzzCompile.
var exprLine = regexp.MustCompile(`(?m)^\s*(?:replicas|activation):\s*(.+)$`)

// FuzzCompile compiles arbitrary expression text against a policy with two queries. It
// must never panic; the result either compiles, with windows only over those queries and
// within the history kept, or yields errors that point inside the expression.
//
//	go test -run '^$' -fuzz FuzzCompile -fuzztime 3m ./policy/
func FuzzCompile(f *testing.F) {
	for _, src := range []string{
		"ceil(queued / 100)",
		"max(ceil(queued / 1000), ceil(current * cpu / 60))",
		"min_over(cpu, 5m) > 70 ? current + 1 : current",
		"queued > 100 ? current + 2 : current",
		"max(ceil((queued ?? 0) / 100), ceil(cpu / 50))",
		"ceil(rate(queued, 1m) * 60 / 100) + min",
		"avg_over(queued, 1.5h) + max_over(cpu, 2d) - min_over(queued, 30s)",
		"queued > 0",
		"'5m' + \"x\" + `y`",
	} {
		f.Add(src, false)
	}
	files, _ := filepath.Glob("../configs/testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range exprLine.FindAllStringSubmatch(string(data), -1) {
			src := strings.Trim(strings.TrimSpace(m[1]), `"`)
			f.Add(src, strings.Contains(m[0], "activation"))
		}
	}
	queries := []string{"queued", "cpu"}
	f.Fuzz(func(t *testing.T, src string, asBool bool) {
		if !utf8.ValidString(src) {
			return // YAML only hands over valid UTF-8
		}
		start := configs.Pos{File: "f.yaml", Line: 7, Col: 15}
		e := configs.Expr{Src: src, Pos: start, Inline: !strings.Contains(src, "\n")}
		prog, windows, errs := compileExpr(e, "policies[0].replicas", queries, asBool, configs.DefaultThroughputWindow)
		if len(errs) > 0 {
			if prog != nil {
				t.Fatalf("%q: a program and errors: %v", src, errs)
			}
			end := start.Col + utf8.RuneCountInString(src)
			for _, err := range errs {
				p := err.Pos
				switch {
				case err.Msg == "" || err.Path != "policies[0].replicas" || p.File != "f.yaml":
					t.Errorf("%q: error without message, path or file: %v", src, err)
				case e.Inline && (p.Line != start.Line || p.Col < start.Col || p.Col > end):
					t.Errorf("%q: %v points outside the expression (columns %d to %d)", src, err, start.Col, end)
				case !e.Inline && p != start:
					t.Errorf("%q: %v: a multi-line expression without file text points at its start", src, err)
				}
			}
			return
		}
		if prog == nil {
			t.Fatalf("%q: neither a program nor an error", src)
		}
		for q, w := range windows {
			if q != "queued" && q != "cpu" || w <= 0 || w > maxWindow {
				t.Errorf("%q: window %s over %q", src, w, q)
			}
		}
		var b strings.Builder
		prog.render(&b, []Value{{V: 350}, {Err: os.ErrNotExist}})
		if b.Len() == 0 && src != "" {
			t.Errorf("%q renders as nothing", src)
		}
	})
}
