package decisionlog

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as one line of JSON, the fields in Record's order under their
// JSON names, as encoding/json would write them (omitempty included) — without its
// reflection, which was a third of the log's cost with thousands of policies deciding every
// second. A value that JSON cannot hold (NaN, an infinity: never a query's value, which
// the engine checks) is written as null rather than losing the record.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","policy":`...)
	b = appendString(b, r.Policy)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Action)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, int64(r.From), 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, int64(r.To), 10)
	if r.Desired != nil {
		b = append(b, `,"desired":`...)
		b = strconv.AppendInt(b, int64(*r.Desired), 10)
	}
	b = append(b, `,"min":`...)
	b = strconv.AppendInt(b, int64(r.Min), 10)
	b = append(b, `,"max":`...)
	b = strconv.AppendInt(b, int64(r.Max), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, r.Reason)
	if r.Failed {
		b = append(b, `,"failed":true`...)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	if r.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	if len(r.Values) > 0 {
		names := make([]string, 0, len(r.Values))
		for name := range r.Values {
			names = append(names, name)
		}
		slices.Sort(names)
		b = append(b, `,"values":{`...)
		for i, name := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			b = appendNumber(b, r.Values[name])
		}
		b = append(b, '}')
	}
	if r.Sampled {
		b = append(b, `,"sampled":true`...)
	}
	if r.Repeat {
		b = append(b, `,"repeat":true`...)
	}
	return append(b, '}')
}

// appendNumber writes a float as encoding/json does (the shortest form, an exponent
// outside 1e-6..1e21), null for none.
func appendNumber(b []byte, v *float64) []byte {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return append(b, "null"...)
	}
	f := *v
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // 1e-07 → 1e-7, as encoding/json writes it
		if n := len(b) - start; n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does: quotes, backslashes and
// control characters escaped, and <, >, &, U+2028 and U+2029 (for HTML and JavaScript);
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
