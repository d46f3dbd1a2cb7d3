package httpsrc

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// GJSON has no arithmetic, but a queue's depth is often spread over several entries
// (one per task, per queue, per partition). These modifiers fold an array — or the
// values of an object — into one number:
//
//	@values.#.queued.total|@sum
//
// A modifier cannot return an error, so on bad input they return a JSON string that
// explains the problem; Value then reports it as "not a number: @sum: ...".
func init() {
	gjson.AddModifier("sum", fold("sum", func(acc, v float64) float64 { return acc + v }, true))
	gjson.AddModifier("max", fold("max", math.Max, false))
	gjson.AddModifier("min", fold("min", math.Min, false))
}

// fold builds a modifier that combines the numbers of an array or object. emptyIsZero
// says what an empty input yields: a sum of nothing is 0, but the largest of nothing is
// undefined and stays an error.
func fold(name string, f func(acc, v float64) float64, emptyIsZero bool) func(json, arg string) string {
	return func(json, _ string) string {
		in := gjson.Parse(json)
		if !in.IsArray() && !in.IsObject() {
			if v, err := Number(in); err == nil {
				return formatNumber(v) // a single number folds to itself
			}
			return modErr(name, "want an array of numbers, got %s", Describe(in))
		}
		var acc float64
		n := 0
		var bad string
		in.ForEach(func(key, v gjson.Result) bool {
			x, err := Number(v)
			if err != nil {
				where := key.String()
				if in.IsArray() {
					where = "element " + strconv.Itoa(n)
				}
				bad = fmt.Sprintf("%s is %s", where, Describe(v))
				return false
			}
			if n == 0 {
				acc = x
			} else {
				acc = f(acc, x)
			}
			n++
			return true
		})
		switch {
		case bad != "":
			return modErr(name, "%s, not a number", bad)
		case n == 0 && !emptyIsZero:
			return modErr(name, "no values to take the %s of", name)
		}
		return formatNumber(acc)
	}
}

func modErr(name, format string, args ...any) string {
	return strconv.Quote("@" + name + ": " + fmt.Sprintf(format, args...))
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Number returns the number r holds: a JSON number, or a string holding one (many APIs
// quote large counters). Anything else is an error describing what r is instead.
func Number(r gjson.Result) (float64, error) {
	switch r.Type {
	case gjson.Number:
		return r.Num, nil
	case gjson.String:
		v, err := strconv.ParseFloat(strings.TrimSpace(r.Str), 64)
		if err == nil {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%s is not a number", Describe(r))
}

// Describe names a JSON value for an error message, quoting short ones.
func Describe(r gjson.Result) string {
	switch {
	case !r.Exists():
		return "nothing"
	case r.IsArray():
		return fmt.Sprintf("an array of %d elements", len(r.Array()))
	case r.IsObject():
		return "an object"
	case r.Type == gjson.Null:
		return "null"
	}
	raw := r.Raw
	if len(raw) > 60 {
		raw = raw[:60] + "…"
	}
	return raw
}

// validJSON is gjson's validator; a thin name so callers need not import gjson for it.
func validJSON(b []byte) bool { return gjson.ValidBytes(b) }

// lookup returns the number at path in a JSON document. When the path matches nothing it
// says what is there instead, so the operator can fix the path without curl.
func lookup(body []byte, path string) (float64, error) {
	r := gjson.GetBytes(body, path)
	if !r.Exists() {
		return 0, fmt.Errorf("no value at path %q; %s", path, whatIsThere(body, path))
	}
	v, err := Number(r)
	if err != nil {
		if r.IsArray() {
			return 0, fmt.Errorf("value at path %q: %w; add |@sum, |@max or |@min to fold it into one number", path, err)
		}
		return 0, fmt.Errorf("value at path %q: %w", path, err)
	}
	return v, nil
}

// maxKeys caps the keys listed in a "no value at path" message.
const maxKeys = 20

// whatIsThere describes the deepest object along a plain dotted path (or the document,
// for paths with queries, wildcards or modifiers, whose structure we don't parse).
func whatIsThere(body []byte, path string) string {
	doc := gjson.ParseBytes(body)
	if !strings.ContainsAny(path, `\|@#*?!`) {
		parts := strings.Split(path, ".")
		for i := len(parts) - 1; i > 0; i-- {
			prefix := strings.Join(parts[:i], ".")
			if r := gjson.GetBytes(body, prefix); r.IsObject() {
				return fmt.Sprintf("%q %s", prefix, keysOf(r))
			} else if r.Exists() {
				return fmt.Sprintf("%q is %s", prefix, Describe(r))
			}
		}
	}
	if doc.IsObject() {
		return "the response " + keysOf(doc)
	}
	return "the response is " + Describe(doc)
}

func keysOf(obj gjson.Result) string {
	var keys []string
	n := 0
	obj.ForEach(func(k, _ gjson.Result) bool {
		if n < maxKeys {
			keys = append(keys, k.String())
		}
		n++
		return true
	})
	switch {
	case n == 0:
		return "is an empty object"
	case n > maxKeys:
		return fmt.Sprintf("has keys %s and %d more", strings.Join(keys, ", "), n-maxKeys)
	}
	return "has keys " + strings.Join(keys, ", ")
}
