package configs

import (
	"fmt"
	"regexp"
	"strings"
)

// cronError explains why spec does not parse: which field is wrong and why, in words an
// operator can act on, instead of the parser's "failed to parse int from MONDAY:
// strconv.Atoi: ...".
func cronError(spec string, err error) string {
	if strings.HasPrefix(strings.TrimSpace(spec), "@") {
		return fmt.Sprintf("unknown descriptor %q (use @yearly, @monthly, @weekly, @daily, @hourly or @every 1h30m)", strings.TrimSpace(spec))
	}
	fields := strings.Fields(spec)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		return err.Error() + " (give the zone as timezone: instead)"
	}
	names := []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	switch {
	case len(fields) == 6:
		names = append([]string{"second"}, names...)
	case len(fields) != 5:
		return fmt.Sprintf("has %d fields; write 5 (minute hour day-of-month month day-of-week), or 6 with a leading seconds field", len(fields))
	}
	// Parse each field alone, the others wildcards, to name the one that is wrong.
	for i, f := range fields {
		probe := make([]string, len(fields))
		for j := range probe {
			probe[j] = "*"
		}
		probe[i] = f
		if _, ferr := CronParser.Parse(strings.Join(probe, " ")); ferr != nil {
			return fmt.Sprintf("%s %q: %s", names[i], f, cronFieldProblem(names[i], ferr))
		}
	}
	return err.Error()
}

var (
	cronNotInt   = regexp.MustCompile(`^failed to parse int from (\S+): `)
	cronAboveMax = regexp.MustCompile(`^end of range \((\d+)\) above maximum \((\d+)\)`)
	cronBelowMin = regexp.MustCompile(`^beginning of range \((\d+)\) below minimum \((\d+)\)`)
	cronBackward = regexp.MustCompile(`^beginning of range \((\d+)\) beyond end of range \((\d+)\)`)
)

func cronFieldProblem(field string, err error) string {
	msg := err.Error()
	if m := cronNotInt.FindStringSubmatch(msg); m != nil {
		switch field {
		case "month":
			return fmt.Sprintf("%q is not a number or a month name (JAN-DEC)", m[1])
		case "day-of-week":
			return fmt.Sprintf("%q is not a number or a day name (SUN-SAT)", m[1])
		}
		return fmt.Sprintf("%q is not a number", m[1])
	}
	if m := cronAboveMax.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is above the maximum (%s)", m[1], m[2])
	}
	if m := cronBelowMin.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is below the minimum (%s)", m[1], m[2])
	}
	if m := cronBackward.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("the range %s-%s runs backwards", m[1], m[2])
	}
	// The parser ends its other messages with ": <field>", which the caller quotes already.
	if i := strings.LastIndex(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return msg
}
