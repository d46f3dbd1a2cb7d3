package configs

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/autoscalerd/autoscalerd/internal/plugin"
)

// Config is the whole daemon configuration: the main file plus policy_dir.
type Config struct {
	// Notes are what a load with Options.OfflineSecrets let pass: secrets that run will need.
	Notes []string `yaml:"-"`
	// File is the main file's path ("" for the built-in demo).
	File string `yaml:"-"`

	Listen string `yaml:"listen"`
	// AllowedHosts are the names (host or host:port) by which clients may reach the HTTP
	// surface besides IP addresses and localhost; see the daemon's Host check.
	AllowedHosts     []string    `yaml:"allowed_hosts"`
	APIToken         Secret      `yaml:"api_token"`
	StateDir         string      `yaml:"state_dir"`
	Log              Log         `yaml:"log"`
	PolicyDir        string      `yaml:"policy_dir"`
	ScaleConcurrency int         `yaml:"scale_concurrency"`
	Docker           Docker      `yaml:"docker"`
	HA               HA          `yaml:"ha"`
	Notify           Notify      `yaml:"notify"`
	PageURL          PageURL     `yaml:"page_url"`
	DecisionLog      DecisionLog `yaml:"decision_log"`
	Defaults         Defaults    `yaml:"defaults"`
	Policies         []*Policy   `yaml:"-"`

	// settingAt says where a daemon setting was given (see SettingPos).
	settingAt func(key string) Pos
}

// SettingPos is where a daemon setting (listen, state_dir, ...) was given: its value in the
// main file, "(flags or environment)", or just the file when the default applies.
func (c *Config) SettingPos(key string) Pos {
	if c.settingAt == nil {
		return Pos{File: c.File}
	}
	return c.settingAt(key)
}

// Log configures the daemon's own log.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// CheckConfig implements Checker.
func (l *Log) CheckConfig(c *Check) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		c.Errorf("level", "%q is not a log level (use debug, info, warn or error)", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		c.Errorf("format", "%q is not a log format (use text or json)", l.Format)
	}
}

// Docker holds settings shared by the Docker targets and sources.
type Docker struct {
	// Host overrides DOCKER_HOST, e.g. unix:///var/run/docker.sock.
	Host string `yaml:"host"`
}

// HA configures leader election between several daemons.
type HA struct {
	Nomad *HANomad `yaml:"nomad"`
}

// CheckConfig implements Checker: `ha: { nomad: }` must not silently mean "no HA".
func (h *HA) CheckConfig(c *Check) {
	if c.Has("nomad") && h.Nomad == nil {
		c.Errorf("nomad", "is empty: give at least lock_path (e.g. { lock_path: autoscalerd/leader })")
	}
}

// HANomad elects a leader through a Nomad Variables lock.
type HANomad struct {
	LockPath  string   `yaml:"lock_path" required:"true"`
	TTL       Duration `yaml:"ttl"`
	Address   string   `yaml:"address"`
	Token     Secret   `yaml:"token"`
	Namespace string   `yaml:"namespace"`
	Region    string   `yaml:"region"`
}

// Nomad's bounds for a variable lock's TTL.
const (
	MinLockTTL = 10 * time.Second
	MaxLockTTL = 24 * time.Hour
)

// CheckConfig implements Checker.
func (h *HANomad) CheckConfig(c *Check) {
	if c.Has("lock_path") && strings.Trim(h.LockPath, " /") == "" {
		c.Errorf("lock_path", "must not be empty")
	}
	if c.Has("ttl") && (h.TTL.D() < MinLockTTL || h.TTL.D() > MaxLockTTL) {
		c.Errorf("ttl", "%s is outside what Nomad accepts for a lock TTL (%s to %s)", h.TTL, Duration(MinLockTTL), Duration(MaxLockTTL))
	}
}

// Tuning is the part of a policy that `defaults` can set for every policy.
type Tuning struct {
	Interval         Duration      `yaml:"interval"`
	Timeout          Duration      `yaml:"timeout"`
	Cooldown         Cooldown      `yaml:"cooldown"`
	Stabilization    Stabilization `yaml:"stabilization"`
	Step             Steps         `yaml:"step"`
	OnError          OnError       `yaml:"on_error"`
	FailureThreshold int           `yaml:"failure_threshold"`
	DryRun           bool          `yaml:"dry_run"`
}

// CheckConfig implements Checker. It checks only the keys given at this level: inherited
// values were checked where they were written (defaults), and reporting them again on
// every policy would only repeat one mistake.
func (t *Tuning) CheckConfig(c *Check) {
	if c.Has("interval") && t.Interval < Duration(100*time.Millisecond) {
		c.Errorf("interval", "%s is too short (at least 100ms)", t.Interval)
	}
	if c.Has("timeout") && t.Timeout <= 0 {
		c.Errorf("timeout", "must be positive (e.g. 5s)")
	}
	if c.Has("failure_threshold") && t.FailureThreshold < 1 {
		c.Errorf("failure_threshold", "must be at least 1")
	}
}

// Throughput tunes the per-replica throughput a policy learns from its own history, for
// the expression functions throughput(q) and drain(q, T).
type Throughput struct {
	// Prior is the completions per replica per second assumed until enough history was
	// measured; 0 means none, and the functions hold the policy until then.
	Prior float64 `yaml:"prior"`
	// Window is how much history the estimate looks at (default 10m).
	Window Duration `yaml:"window"`
	// MinIntervals is how many measured intervals replace the prior (default 3).
	MinIntervals int `yaml:"min_intervals"`
	// Arrivals names a query that counts the work that arrived (a counter, e.g. total
	// tasks enqueued); with it, intervals in which the backlog grew are measured too.
	Arrivals string `yaml:"arrivals"`
}

// DefaultThroughputWindow is the history the throughput estimate looks at by default.
const DefaultThroughputWindow = 10 * time.Minute

// CheckConfig implements Checker.
func (t *Throughput) CheckConfig(c *Check) {
	if t.Prior < 0 || math.IsNaN(t.Prior) || math.IsInf(t.Prior, 0) {
		c.Errorf("prior", "must be a positive number of completions per replica per second (or 0 for none)")
	}
	if c.Has("window") && (t.Window < Duration(time.Minute) || t.Window > Duration(24*time.Hour)) {
		c.Errorf("window", "%s is outside 1m..24h", t.Window)
	}
	if c.Has("min_intervals") && t.MinIntervals < 1 {
		c.Errorf("min_intervals", "must be at least 1")
	}
}

// Defaults are inherited by every policy unless it overrides them.
type Defaults struct {
	Tuning `yaml:",inline"`
}

// Cooldown is the asymmetric wait between scaling actions (SPEC §3.1).
type Cooldown struct {
	Up   Duration `yaml:"up"`
	Down Duration `yaml:"down"`
}

func (*Cooldown) example() string { return "cooldown: { up: 30s, down: 5m }" }

// Stabilization makes scale-ups wait for sustained demand.
type Stabilization struct {
	Up Duration `yaml:"up"`
}

func (*Stabilization) example() string { return "stabilization: { up: 1m }" }

// Steps caps the change per action in each direction.
type Steps struct {
	Up   Step `yaml:"up"`
	Down Step `yaml:"down"`
}

func (*Steps) example() string { return `step: { up: 10, down: "50%" }` }

// Policy is one autoscaling rule: queries, an expression and a target.
type Policy struct {
	Tuning `yaml:",inline"`

	Name       string     `yaml:"name" required:"true"`
	Target     Target     `yaml:"target" required:"true"`
	Min        int        `yaml:"min"`
	Max        int        `yaml:"max" required:"true"`
	Queries    Queries    `yaml:"queries"`
	Replicas   Expr       `yaml:"replicas" required:"true"`
	Activation Expr       `yaml:"activation"`
	Schedule   []Schedule `yaml:"schedule"`
	// Throughput tunes the estimate behind the expression's throughput() and drain().
	Throughput Throughput `yaml:"throughput"`
	// Notify adds sinks for this policy's events to the daemon-level ones.
	Notify Notify `yaml:"notify"`

	// Pos is where the policy is defined; Path its key path within that file.
	Pos  Pos    `yaml:"-"`
	Path string `yaml:"-"`

	namePos Pos  // where the name's value is, for duplicate names
	decoded bool // queries and expressions decoded without error, so Options.Compile may look at it
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// MaxNameLen bounds a policy name by what a state file name can hold. The state store
// (policy.Store) writes <name>.json through a temporary ".<name>.<random>.tmp", and a
// file name has at most 255 bytes (NAME_MAX on Linux and most file systems): the
// temporary name adds 16 bytes, leaving 239. 200 leaves room for a longer suffix later.
const MaxNameLen = 200

// nameLike suggests a valid name close to s: lower case, other characters replaced by sep.
func nameLike(s string, sep rune) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-' && sep == '-':
			b.WriteRune(r)
		default:
			b.WriteRune(sep)
		}
	}
	out := b.String()
	if out == "" || sep == '_' && out[0] >= '0' && out[0] <= '9' {
		out = "q" + string(sep) + out
	}
	return out
}

// CheckConfig implements Checker.
func (p *Policy) CheckConfig(c *Check) {
	// Policy's own CheckConfig hides the one it would inherit from the inline Tuning.
	p.Tuning.CheckConfig(c)
	switch {
	case c.Has("name") && !nameRE.MatchString(p.Name):
		c.Errorf("name", "%q is not a valid policy name (use lower-case letters, digits, - and _, e.g. %q)", p.Name, nameLike(p.Name, '-'))
	case len(p.Name) > MaxNameLen:
		c.Errorf("name", "is %d characters long; a policy name has at most %d (it names the policy's state file)", len(p.Name), MaxNameLen)
	}
	if p.Min < 0 {
		c.Errorf("min", "must not be negative")
	}
	if c.Has("max") && p.Max < 1 {
		c.Errorf("max", "must be at least 1")
	}
	if c.Has("max") && p.Min > p.Max {
		c.Errorf("min", "min (%d) is greater than max (%d)", p.Min, p.Max)
	}
	if a := p.Throughput.Arrivals; a != "" && !slices.ContainsFunc(p.Queries, func(q *Query) bool { return q.Name == a }) {
		c.Errorf("throughput.arrivals", "%q is not one of this policy's queries%s", a, DidYouMean(a, p.Queries.Names()))
	}
	if p.Activation.IsSet() && p.Min != 0 {
		c.Errorf("activation", "only applies to policies with min: 0 (this one has min: %d); set min: 0 or remove activation", p.Min)
	}
	if p.OnError.Replicas != nil && c.Has("max") && (*p.OnError.Replicas < p.Min || *p.OnError.Replicas > p.Max) {
		c.Errorf("on_error", "fallback replicas %d is outside [min, max] = [%d, %d]", *p.OnError.Replicas, p.Min, p.Max)
	}
	for i, s := range p.Schedule {
		field := fmt.Sprintf("schedule[%d]", i)
		hi := p.Max
		if s.Max != nil {
			hi = *s.Max
		}
		if s.Min != nil && *s.Min > hi {
			c.Errorf(field+".min", "schedule min (%d) is greater than max (%d)", *s.Min, hi)
		}
		// A ceiling under the policy's floor cannot hold: the floor would win silently.
		if s.Min == nil && s.Max != nil && *s.Max >= 1 && *s.Max < p.Min {
			c.Errorf(field+".max", "schedule max (%d) is below the policy's min (%d); set the schedule's min too", *s.Max, p.Min)
		}
	}
}

// Target names what a policy scales: exactly one kind.
type Target struct {
	Kind   string
	Config any // pointer to the kind's config struct
	Pos    Pos
}

// Keyed is implemented by target configs. Two policies whose targets have the same key
// would drive the same thing, which is a config error.
type Keyed interface {
	TargetKey() string
}

// Key identifies the scaled thing across policies.
func (t Target) Key() string {
	if k, ok := t.Config.(Keyed); ok {
		return t.Kind + ":" + k.TargetKey()
	}
	return t.Kind
}

// Same reports whether t and o scale the same thing with the same settings, wherever in
// the files they are written: a reload that only moves a policy must keep its target (and
// the children a process target supervises).
func (t Target) Same(o Target) bool {
	return t.Kind == o.Kind && reflect.DeepEqual(t.Config, o.Config)
}

// UnmarshalConfig implements Unmarshaler.
func (t *Target) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	t.Pos = d.Pos(n)
	kind, cfg, ok := decodeOneOf(d, n, path, plugin.Target, nil)
	if ok {
		t.Kind, t.Config = kind, cfg
	}
}

// Query is one named input of a policy: exactly one source kind, plus a timeout.
type Query struct {
	Name    string
	Kind    string
	Config  any // pointer to the kind's config struct
	Timeout Duration
	Pos     Pos
}

// Queries keeps the queries in file order.
type Queries []*Query

// Names lists the queries' names in file order.
func (qs Queries) Names() []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Name
	}
	return out
}

var queryNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// UnmarshalConfig implements Unmarshaler.
func (qs *Queries) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	keys, vals, ok := d.MappingKeys(n, path)
	if !ok {
		return
	}
	for i, k := range keys {
		qpath := JoinPath(path, k.Value)
		switch {
		case !queryNameRE.MatchString(k.Value):
			d.Errorf(k, qpath, "%q is not a valid query name (use lower-case letters, digits and _, not starting with a digit, e.g. %q)", k.Value, nameLike(k.Value, '_'))
			continue
		}
		q := &Query{Name: k.Value, Pos: d.Pos(k)}
		d.Record(vals[i], qpath)
		common := map[string]func(*yaml.Node, string){
			"timeout": func(n *yaml.Node, p string) { d.Decode(n, p, &q.Timeout) },
		}
		kind, cfg, ok := decodeOneOf(d, vals[i], qpath, plugin.Query, common)
		if ok {
			q.Kind, q.Config = kind, cfg
			*qs = append(*qs, q)
		}
	}
}

// decodeOneOf decodes a mapping that holds exactly one registered kind of class, plus any
// keys in common, into that kind's fresh config struct.
func decodeOneOf(d *Decoder, n *yaml.Node, path string, class plugin.Class, common map[string]func(*yaml.Node, string)) (string, any, bool) {
	what := string(class)
	keys, vals, ok := d.MappingKeys(n, path)
	if !ok {
		return "", nil, false
	}
	all := plugin.Names(class)
	var kind string
	var cfg any
	var found []string
	for i, k := range keys {
		if f, ok := common[k.Value]; ok {
			f(vals[i], JoinPath(path, k.Value))
			continue
		}
		fresh, ok := plugin.NewConfig(class, k.Value)
		if !ok {
			cands := append(append([]string(nil), all...), keysOf(common)...)
			d.Errorf(k, path, "unknown %s kind %q (want one of %s)%s", what, k.Value, strings.Join(all, ", "), didYouMean(k.Value, cands))
			return "", nil, false
		}
		found = append(found, k.Value)
		if kind == "" {
			kind, cfg = k.Value, fresh
			d.Decode(vals[i], JoinPath(path, k.Value), cfg)
		}
	}
	switch len(found) {
	case 0:
		d.Errorf(n, path, "needs exactly one %s kind (one of %s)", what, strings.Join(all, ", "))
		return "", nil, false
	case 1:
		return kind, cfg, true
	}
	d.Errorf(n, path, "has %d %s kinds (%s); give exactly one", len(found), what, strings.Join(found, ", "))
	return "", nil, false
}

func keysOf(m map[string]func(*yaml.Node, string)) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Schedule raises the floor (and may change the ceiling) while a cron window is active.
type Schedule struct {
	Cron     string   `yaml:"cron" required:"true"`
	Duration Duration `yaml:"duration" required:"true"`
	Timezone string   `yaml:"timezone"`
	Min      *int     `yaml:"min"`
	Max      *int     `yaml:"max"`

	// Spec and Location are set by the check from Cron and Timezone.
	Spec     cron.Schedule  `yaml:"-"`
	Location *time.Location `yaml:"-"`
}

// CronParser accepts five fields, an optional leading seconds field, and descriptors.
var CronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckConfig implements Checker.
func (s *Schedule) CheckConfig(c *Check) {
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil {
			c.Errorf("timezone", "unknown time zone %q (use an IANA name such as Europe/Berlin)", s.Timezone)
		} else {
			loc = l
		}
	}
	s.Location = loc
	if s.Cron != "" {
		spec, err := CronParser.Parse(s.Cron)
		if err != nil {
			c.Errorf("cron", "%q is not a cron spec: %s", s.Cron, cronError(s.Cron, err))
		} else {
			s.Spec = spec
		}
	}
	if c.Has("duration") && s.Duration <= 0 {
		c.Errorf("duration", "must be positive")
	}
	if s.Min == nil && s.Max == nil {
		c.Errorf("", "sets neither min nor max: give min: N to raise the floor while the schedule is active, max: N to change the ceiling, or both")
	}
	if s.Min != nil && *s.Min < 0 {
		c.Errorf("min", "must not be negative")
	}
	if s.Max != nil && *s.Max < 1 {
		c.Errorf("max", "must be at least 1")
	}
}

// ActiveAt reports whether the schedule's window covers t: some cron activation happened
// in (t - duration, t].
func (s *Schedule) ActiveAt(t time.Time) bool {
	active, _ := s.ActiveUntil(t)
	return active
}

// ActiveUntil is ActiveAt, plus the time until which the answer holds at least, so a
// caller that asks every few seconds can skip the cron in between.
func (s *Schedule) ActiveUntil(t time.Time) (active bool, until time.Time) {
	if s.Spec == nil {
		return false, t
	}
	start := t.Add(-s.Duration.D()).In(s.Location)
	next := s.Spec.Next(start) // the first activation after t - duration
	switch {
	case next.IsZero():
		// None within the cron library's horizon of five years: inactive for a day at least.
		return false, t.Add(24 * time.Hour)
	case next.After(t):
		return false, next
	}
	// Active while t' - duration < next, i.e. until next + duration.
	return true, next.Add(s.Duration.D())
}
