package configs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go duration text ("30s", "5m", "1h30m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalConfig implements Unmarshaler.
func (d *Duration) UnmarshalConfig(dec *Decoder, n *yaml.Node, path string) {
	s, ok := dec.Scalar(n, path)
	if !ok {
		return
	}
	v, err := ParseDuration(s)
	if err != nil {
		dec.Errorf(n, path, "%v", err)
		return
	}
	*d = Duration(v)
}

// ParseDuration parses Go duration text, refusing bare numbers (is "30" seconds or minutes?)
// and negative values.
func ParseDuration(s string) (time.Duration, error) {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("%q is not a duration (use %ss)", s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 30s, 5m, 1h30m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q: a duration must not be negative", s)
	}
	return v, nil
}

// FormatDuration prints a duration without the zero units Go adds ("5m", not "5m0s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Secret is a string that never reaches logs, status output or metrics. In the file it is
// a plain string (usually "${VAR}") or { file: /run/secrets/x }; a relative file is
// relative to the config file that names it.
type Secret struct {
	value string
	file  string
	// offline says the value is a placeholder for what Options.OfflineSecrets let pass.
	offline bool
}

// Offline reports whether the secret is a placeholder (Options.OfflineSecrets): a kind
// that parses its secret (a DSN) must not judge it.
func (s Secret) Offline() bool { return s.offline }

// NewSecret wraps a value, for secrets that come from flags or the environment.
func NewSecret(v string) Secret { return Secret{value: v} }

// Value returns the secret itself. Only pass it to the system that needs it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether a secret was given.
func (s Secret) IsSet() bool { return s.value != "" }

// String hides the value.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "<redacted>"
}

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalConfig implements Unmarshaler.
func (s *Secret) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.MappingNode {
		// Decoded by hand: "unknown key" plus "missing required key" would be two
		// messages for one mistake, neither saying what a secret looks like.
		const form = `a secret is a string (such as "${TOKEN}") or { file: /run/secrets/name }`
		keys, vals, _ := d.MappingKeys(n, path)
		var fileNode *yaml.Node
		for i, k := range keys {
			if k.Value == "file" {
				fileNode = vals[i]
				continue
			}
			d.Errorf(k, path, "unknown key %q%s: %s", k.Value, didYouMean(k.Value, []string{"file"}), form)
		}
		if fileNode == nil {
			if len(keys) == 0 {
				d.Errorf(n, path, "is empty: %s", form)
			}
			return
		}
		var file string
		d.Decode(fileNode, JoinPath(path, "file"), &file)
		if file == "" {
			if !d.Failed(JoinPath(path, "file")) {
				d.Errorf(fileNode, JoinPath(path, "file"), "must name the file that holds the secret")
			}
			return
		}
		if !filepath.IsAbs(file) {
			// Like policy_dir: relative to the file that names it, not to wherever the
			// daemon happens to start (systemd starts it in /).
			file = filepath.Join(filepath.Dir(d.file), file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			if d.offline != nil {
				d.note(fileNode, JoinPath(path, "file"), "cannot read secret here (%v); run will need it", err)
				s.value, s.file, s.offline = "unreadable-secret", file, true
				return
			}
			d.Errorf(fileNode, JoinPath(path, "file"), "cannot read secret: %v", err)
			return
		}
		s.value, s.file = strings.TrimRight(string(b), "\r\n"), file
		return
	}
	if d.offline != nil {
		s.value, s.offline = d.offlineScalar(n, path)
		return
	}
	if v, ok := d.Scalar(n, path); ok {
		s.value = v
	}
}

// Expr is an expression's source text and where it starts in the file, so compile errors
// can point into it.
type Expr struct {
	Src string
	Pos Pos
	// Inline is true when Src sits on one line at Pos (plain or quoted scalar), so a column
	// inside the expression maps to a file column.
	Inline bool

	// at holds the file position of each rune of Src, whole whether it covers all of Src
	// (see PosAt).
	at    []Pos
	whole bool
}

// IsSet reports whether an expression was given.
func (e Expr) IsSet() bool { return strings.TrimSpace(e.Src) != "" }

// UnmarshalConfig implements Unmarshaler.
func (e *Expr) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	s, ok := d.Scalar(n, path)
	if !ok {
		return
	}
	e.Src, e.Pos = s, d.Pos(n)
	e.at, e.whole = d.mapRunes(n, s)
	switch n.Style {
	case 0, yaml.TaggedStyle:
		e.Inline = !strings.Contains(s, "\n")
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		e.Inline = !strings.Contains(s, "\n")
		e.Pos.Col++
	}
}

// Step caps the change of one scaling action: a count, or a percentage of the current count.
type Step struct {
	Value   float64
	Percent bool
}

// IsSet reports whether a limit was given (zero means unlimited).
func (s Step) IsSet() bool { return s.Value > 0 }

func (s Step) String() string {
	if s.Percent {
		return strconv.FormatFloat(s.Value, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(s.Value, 'f', -1, 64)
}

// Limit returns how many replicas one action may add or remove from current.
func (s Step) Limit(current int) int {
	if !s.IsSet() {
		return -1
	}
	if !s.Percent {
		return int(s.Value)
	}
	n := int(float64(current)*s.Value/100 + 0.999999)
	return max(n, 1)
}

// UnmarshalConfig implements Unmarshaler.
func (s *Step) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	v, ok := d.Scalar(n, path)
	if !ok {
		return
	}
	num, pct := strings.CutSuffix(strings.TrimSpace(v), "%")
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || (!pct && f != float64(int(f))) {
		d.Errorf(n, path, "%q is not a positive count or percentage (use e.g. 2 or \"50%%\")", v)
		return
	}
	s.Value, s.Percent = f, pct
}

// OnError says what a policy does when its queries fail: hold (the default), or move
// towards a fixed count after FailureThreshold failed ticks.
type OnError struct {
	// Replicas is the fallback count; nil means hold.
	Replicas *int
}

func (o OnError) String() string {
	if o.Replicas == nil {
		return "hold"
	}
	return fmt.Sprintf("replicas: %d", *o.Replicas)
}

// UnmarshalConfig implements Unmarshaler.
func (o *OnError) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		v, ok := d.Scalar(n, path)
		if !ok {
			return
		}
		if v != "hold" {
			d.Errorf(n, path, "%q is not an error policy (use hold or { replicas: N })", v)
			return
		}
		o.Replicas = nil
		return
	}
	var f struct {
		Replicas *int `yaml:"replicas" required:"true"`
	}
	d.Decode(n, path, &f)
	if f.Replicas != nil && *f.Replicas < 0 {
		d.Errorf(n, JoinPath(path, "replicas"), "must not be negative")
		return
	}
	o.Replicas = f.Replicas
}
