package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Builtin defaults, used where neither the file nor `defaults:` says otherwise.
const (
	DefaultListen           = "127.0.0.1:9090"
	DefaultStateDir         = "/var/lib/autoscalerd"
	DefaultInterval         = 15 * time.Second
	DefaultTimeout          = 5 * time.Second
	DefaultCooldownUp       = 30 * time.Second
	DefaultCooldownDown     = 5 * time.Minute
	DefaultFailureThreshold = 3
	DefaultScaleConcurrency = 4
)

// Options tune a load.
type Options struct {
	// LookupEnv expands ${VAR}; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// Override returns a value for a daemon setting given by flag or environment
	// (keys: listen, state_dir, log.level, log.format, policy_dir, docker.host, api_token,
	// scale_concurrency). It wins over the file.
	Override func(key string) (string, bool)
	// Compile, when set, compiles a policy's expressions during the load, so that their
	// mistakes are reported together with every other one instead of after the others are
	// fixed. It sees only policies whose queries and expressions decoded without error:
	// compiling against a query that failed to decode would only add follow-on errors.
	Compile func(*Policy) Errors
	// OfflineSecrets is for commands that touch no source or target (validate, simulate):
	// a secret whose ${VAR} is unset or whose file cannot be read is taken as a
	// placeholder, and Config.Notes says which, instead of failing the load.
	OfflineSecrets bool
}

// OverrideKeys are the daemon settings that flags and AUTOSCALERD_* variables can set.
var OverrideKeys = []string{"listen", "state_dir", "log.level", "log.format", "policy_dir", "docker.host", "api_token", "scale_concurrency"}

// Load reads the main file at path and every *.yaml in its policy_dir.
func Load(path string, opts Options) (*Config, error) {
	data, err := ReadFile(path, MaxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for a main file already in memory (the embedded demo, tests).
func Parse(file string, data []byte, opts Options) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	var errs Errors
	cfg := &Config{
		File:             file,
		Listen:           DefaultListen,
		StateDir:         DefaultStateDir,
		Log:              Log{Level: "info", Format: "text"},
		ScaleConcurrency: DefaultScaleConcurrency,
		DecisionLog:      DefaultDecisionLog(),
		Defaults: Defaults{Tuning: Tuning{
			Interval:         Duration(DefaultInterval),
			Timeout:          Duration(DefaultTimeout),
			Cooldown:         Cooldown{Up: Duration(DefaultCooldownUp), Down: Duration(DefaultCooldownDown)},
			FailureThreshold: DefaultFailureThreshold,
		}},
	}
	d := NewDecoder(file, &errs, opts.LookupEnv)
	d.setSource(data)
	if opts.OfflineSecrets {
		d.offline = &cfg.Notes
	}
	root, ok := parseYAML(file, data, &errs)
	if ok {
		var top struct {
			*Config  `yaml:",inline"`
			Policies yaml.Node `yaml:"policies"`
		}
		top.Config = cfg
		d.Decode(root, "", &top)
		if top.Policies.Kind != 0 {
			cfg.Policies = decodePolicies(d, &top.Policies, "policies", cfg.Defaults)
		}
	}
	at := settingPos(d, applyOverrides(cfg, opts.Override, &errs))
	cfg.settingAt = at
	if cfg.PolicyDir != "" {
		loadPolicyDir(cfg, opts, at("policy_dir"), &errs)
	}
	crossCheck(cfg, at, d.Failed("api_token"), &errs)
	if opts.Compile != nil {
		for _, p := range cfg.Policies {
			if p.decoded {
				errs = append(errs, opts.Compile(p)...)
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseYAML(file string, data []byte, errs *Errors) (*yaml.Node, bool) {
	if pos, b, ok := invalidUTF8(file, data); ok {
		// yaml.v3 says only "invalid leading UTF-8 octet", with no position.
		errs.Add(pos, "", "invalid UTF-8 (byte 0x%02x): save the file as UTF-8", b)
		return nil, false
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false // an empty file is an empty config
		}
		pos, msg := yamlError(file, data, err)
		errs.Add(pos, "", "%s", msg)
		return nil, false
	}
	return &root, true
}

// invalidUTF8 finds the first byte of data that is not UTF-8 and returns its position
// (the column counts characters, as yaml.v3's do). A file that starts with a UTF-16 byte
// order mark is left to yaml.v3, which reads UTF-16.
func invalidUTF8(file string, data []byte) (Pos, byte, bool) {
	if utf8.Valid(data) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return Pos{}, 0, false
	}
	pos := Pos{File: file, Line: 1, Col: 1}
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return pos, data[0], true
		}
		data = data[size:]
		switch {
		case r == '\n', r == '\r' && !bytes.HasPrefix(data, []byte("\n")):
			pos.Line, pos.Col = pos.Line+1, 1
		case r != '\r':
			pos.Col++
		}
	}
	return pos, 0, false
}

// yamlHints say how to fix yaml.v3's syntax errors. Parser errors (the first group) give
// the line of the enclosing block or flow collection, counted from 0; scanner errors count
// from 1.
var yamlHints = []struct {
	problem   string
	zeroBased bool
	hint      string
	// findLine: the enclosing block may start far above the mistake; find the line
	// where parsing first fails (see badIndentLine) and use lineHint there.
	findLine bool
	lineHint string
}{
	{problem: "did not find expected ',' or ']'", zeroBased: true, hint: ` in the [ ] list that starts on this line: close it with "]", and quote items that hold {, }, [, ], "," or ": ", such as "${VAR}"`},
	{problem: "did not find expected ',' or '}'", zeroBased: true, hint: ` in the { } mapping that starts on this line: close it with "}", and quote values that hold {, }, [, ], "," or ": ", such as "${VAR}"`},
	{problem: "did not find expected key", zeroBased: true, hint: " in the mapping that starts on this line: check the indentation of its keys",
		findLine: true, lineHint: ": check this line: its indentation does not match the lines above it, or text follows a closing quote or bracket"},
	{problem: "did not find expected '-' indicator", zeroBased: true, hint: ` in the list that starts on this line: every item starts with "- " at the same indentation`,
		findLine: true, lineHint: ": check this line: its indentation does not match the lines above it, or text follows a closing quote or bracket"},
	{problem: "did not find expected node content", zeroBased: true},
	{problem: "did not find expected <document start>", zeroBased: true},
	{problem: "mapping values are not allowed in this context", hint: `: a value that holds ": ", such as the expression a ? b : c, must be quoted`},
	{problem: "found unexpected end of stream", hint: ": a quoted value that starts on this line is not closed"},
	{problem: "found a tab character that violates indentation", hint: ": indent with spaces, YAML does not allow tabs"},
	{problem: "found character that cannot start any token", hint: ": a value that starts with @, ` or % must be quoted"},
}

// yamlError turns a yaml.v3 syntax error ("yaml: line N: msg") into a position and a
// message that says how to fix it.
func yamlError(file string, data []byte, err error) (Pos, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, m
			}
		}
	}
	var hint string
	col := 1
	for _, h := range yamlHints {
		if msg != h.problem {
			continue
		}
		hint = h.hint
		if h.zeroBased || line == 0 {
			// yaml.v3 leaves out "line 0" too, which is the first line.
			line++
		}
		if h.findLine {
			if l, c, ok := badIndentLine(data, line, msg); ok {
				line, col, hint = l, c, h.lineHint
			}
		}
	}
	// The +1 above can step past the end, where yaml.v3 reports the end of the input.
	line = min(line, len(splitLines(data)))
	pos := Pos{File: file}
	if line > 0 {
		pos.Line, pos.Col = line, col
	}
	if strings.Contains(msg, "tab character") {
		// The reported line is where the scan started; the tab may be further down.
		lines := splitLines(data)
		for i := max(line-1, 0); i < len(lines); i++ {
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
			if tab := strings.IndexByte(indent, '\t'); tab >= 0 {
				pos.Line, pos.Col = i+1, tab+1
				break
			}
		}
	}
	return pos, "invalid YAML: " + msg + hint
}

// badIndentLine finds the first line, from line from on, where the file's first lines stop
// parsing with the same problem as the whole file: for indentation mistakes that is the
// misindented line, while yaml.v3 names only the start of the block around it. It returns
// that line and the column of its first character.
//
// The parser stops at the first bad token, so every prefix that reaches the bad line fails
// the same way and shorter ones (nearly always) do not: a binary search over prefix
// lengths finds the line in a dozen parses, even in a long file.
func badIndentLine(data []byte, from int, problem string) (int, int, bool) {
	lines := splitLines(data)
	fails := func(k int) bool {
		var n yaml.Node
		err := yaml.NewDecoder(strings.NewReader(strings.Join(lines[:k], "\n"))).Decode(&n)
		if err == nil {
			return false
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			_, msg, _ = strings.Cut(rest, ": ")
		}
		return msg == problem
	}
	lo, hi := max(from, 1)-1, len(lines) // fails(lo) is taken as false, fails(hi) must be true
	if !fails(hi) {
		return 0, 0, false
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	text := lines[hi-1]
	return hi, len(text) - len(strings.TrimLeft(text, " ")) + 1, true
}

// decodePolicies decodes a list of policies, each starting from the inherited defaults.
func decodePolicies(d *Decoder, n *yaml.Node, path string, defaults Defaults) []*Policy {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "expected a list of policies, got %s", describe(n))
		return nil
	}
	var out []*Policy
	for i, item := range n.Content {
		if d.overBudget {
			break
		}
		if r := resolve(item); r == nil || isNull(r) {
			d.Errorf(item, fmt.Sprintf("%s[%d]", path, i), "is empty; a policy needs at least name, target, max and replicas")
			continue
		}
		p := decodePolicy(d, item, fmt.Sprintf("%s[%d]", path, i), defaults)
		out = append(out, p)
	}
	if d.overBudget {
		// The policies decoded before the budget ran out are copies of one another:
		// checking them would only add "duplicate name" errors to the one that matters.
		return nil
	}
	return out
}

func decodePolicy(d *Decoder, n *yaml.Node, path string, defaults Defaults) *Policy {
	p := &Policy{Tuning: defaults.Tuning, Min: 1, Pos: d.Pos(resolve(n)), Path: path}
	d.Decode(n, path, p)
	// The expressions can be compiled when what they depend on decoded: the queries (their
	// names are the scope) and the expressions themselves. A mistake elsewhere in the
	// policy (a bad duration, a typo'd key) must not hide an expression's mistakes.
	p.decoded = !d.overBudget && p.Replicas.IsSet() && !d.Failed(JoinPath(path, "queries")) && !d.Failed(JoinPath(path, "replicas")) && !d.Failed(JoinPath(path, "activation"))
	p.namePos = d.pos[JoinPath(path, "name")]
	for _, q := range p.Queries {
		if q.Timeout == 0 {
			q.Timeout = p.Timeout
		}
	}
	return p
}

// loadPolicyDir adds the policies of every *.yaml / *.yml file in policy_dir, in name order.
// A file holds either one policy or `policies: [...]`.
func loadPolicyDir(cfg *Config, opts Options, pos Pos, errs *Errors) {
	dir := cfg.PolicyDir
	if !filepath.IsAbs(dir) && cfg.File != "" {
		dir = filepath.Join(filepath.Dir(cfg.File), dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		// The path is in the message already.
		errs.Add(pos, "policy_dir", "cannot read directory %s: %v", dir, pathCause(err))
		return
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := ReadFile(f, MaxConfigFile)
		if err != nil {
			errs.Add(Pos{File: f}, "", "cannot read: %v", pathCause(err))
			continue
		}
		root, ok := parseYAML(f, data, errs)
		if !ok {
			continue
		}
		d := NewDecoder(f, errs, opts.LookupEnv)
		d.setSource(data)
		if opts.OfflineSecrets {
			d.offline = &cfg.Notes
		}
		root = resolve(root)
		if root == nil || isNull(root) {
			continue // a file with nothing in it, like an empty main file
		}
		if list := policiesKey(root); list >= 0 {
			for i := 0; i+1 < len(root.Content); i += 2 {
				if k := resolve(root.Content[i]); i != list {
					d.Errorf(k, "", "unknown key %q next to policies: (a policy_dir file holds one policy, or only policies: [...]; defaults and daemon settings belong in the main file)", k.Value)
				}
			}
			cfg.Policies = append(cfg.Policies, decodePolicies(d, root.Content[list+1], "policies", cfg.Defaults)...)
			continue
		}
		if p := decodePolicy(d, root, "", cfg.Defaults); !d.overBudget {
			cfg.Policies = append(cfg.Policies, p)
		}
	}
}

// policiesKey returns the index of the `policies` key in a mapping node, or -1.
func policiesKey(n *yaml.Node) int {
	if n.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if resolve(n.Content[i]).Value == "policies" {
			return i
		}
	}
	return -1
}

// overridePos is where a setting given by flag or environment comes from.
var overridePos = Pos{File: "(flags or environment)"}

// applyOverrides sets the daemon settings given by flag or environment and returns their keys.
func applyOverrides(cfg *Config, get func(string) (string, bool), errs *Errors) map[string]bool {
	set := map[string]bool{}
	if get == nil {
		return set
	}
	pos := overridePos
	for _, key := range OverrideKeys {
		v, ok := get(key)
		if !ok {
			continue
		}
		set[key] = true
		switch key {
		case "listen":
			cfg.Listen = v
		case "state_dir":
			cfg.StateDir = v
		case "log.level":
			cfg.Log.Level = v
		case "log.format":
			cfg.Log.Format = v
		case "policy_dir":
			cfg.PolicyDir = v
		case "docker.host":
			cfg.Docker.Host = v
		case "api_token":
			cfg.APIToken = NewSecret(v)
		case "scale_concurrency":
			n, err := strconv.Atoi(v)
			if err != nil {
				errs.Add(pos, key, "%q is not a whole number", v)
				continue
			}
			cfg.ScaleConcurrency = n
		}
	}
	_, lvl := get("log.level")
	_, fmtOK := get("log.format")
	if lvl || fmtOK {
		cfg.Log.CheckConfig(&Check{d: NewDecoder(pos.File, errs, nil), path: "log"})
	}
	return set
}

// settingPos returns where a daemon setting was given: its value in the main file, the
// flags or environment when they override it, or just the file when it was left out.
//
// It keeps the positions of the daemon's settings only, not the decoder: the loaded
// configuration lives as long as the daemon runs it, and the positions of every policy's
// keys (megabytes with thousands of policies) are only needed while it is checked.
func settingPos(d *Decoder, overridden map[string]bool) func(key string) Pos {
	kept := map[string]Pos{}
	for path, p := range d.pos {
		if path != "policies" && !strings.HasPrefix(path, "policies.") && !strings.HasPrefix(path, "policies[") {
			kept[path] = p
		}
	}
	file := d.file
	return func(key string) Pos {
		if overridden[key] {
			return overridePos
		}
		if p, ok := kept[key]; ok {
			return p
		}
		return Pos{File: file}
	}
}

// crossCheck finds mistakes that span settings, policies or files. at gives a daemon
// setting's position; tokenFailed says api_token was given but could not be read (and
// was reported already).
func crossCheck(cfg *Config, at func(string) Pos, tokenFailed bool, errs *Errors) {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs.Add(at("listen"), "listen", "%q is not a HOST:PORT address (e.g. 127.0.0.1:9090, or 0.0.0.0:9090 with api_token)", cfg.Listen)
	} else if !IsLoopback(cfg.Listen) && !cfg.APIToken.IsSet() && !tokenFailed {
		errs.Add(at("listen"), "listen", "%q is not a loopback address: set api_token (or AUTOSCALERD_API_TOKEN) so that only its holders can pause, resume and reload", cfg.Listen)
	}
	for _, h := range cfg.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t@") {
			errs.Add(at("allowed_hosts"), "allowed_hosts", "%q is not a host name (write a name such as autoscaler.internal or autoscaler.internal:9090, without scheme or path)", h)
		}
	}
	if cfg.ScaleConcurrency < 1 {
		errs.Add(at("scale_concurrency"), "scale_concurrency", "must be at least 1")
	}
	if cfg.HA.Nomad != nil && cfg.HA.Nomad.TTL == 0 {
		cfg.HA.Nomad.TTL = Duration(15 * time.Second)
	}
	names := map[string]*Policy{}
	targets := map[string]*Policy{}
	for _, p := range cfg.Policies {
		if p.Name != "" {
			if first, dup := names[p.Name]; dup {
				errs.Add(p.namePos, JoinPath(p.Path, "name"), "duplicate policy name %q (first defined at %s)", p.Name, first.namePos)
			} else {
				names[p.Name] = p
			}
		}
		if p.Target.Config != nil {
			key := p.Target.Key()
			if first, dup := targets[key]; dup {
				errs.Add(p.Target.Pos, JoinPath(p.Path, "target"), "policy %q drives the same target as policy %q (%s, at %s); two policies may not drive one target", p.Name, first.Name, key, first.Target.Pos)
			} else {
				targets[key] = p
			}
		}
	}
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
