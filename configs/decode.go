package configs

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Decoder turns YAML nodes into typed structs. It never stops at the first mistake: every
// error is recorded with its position and key path, and decoding carries on.
//
// Struct fields are matched by their `yaml:"name"` tag; a key without a field is an error
// with a did-you-mean hint. `required:"true"` makes a key mandatory. Scalars have
// ${VAR} and ${VAR:-default} expanded before they are converted.
type Decoder struct {
	file   string
	errs   *Errors
	lookup func(string) (string, bool)
	pos    map[string]Pos
	// failed holds the paths where decoding reported an error, so that checks do not
	// report the same mistake again as a consequence ("must not be empty" after an
	// unset ${VAR}).
	failed map[string]bool
	// lines is the file's text, when known, to map expressions rune by rune.
	lines []string
	// offline, when set, takes secrets that cannot be had here as placeholders and notes
	// them (Options.OfflineSecrets).
	offline *[]string

	// Alias expansion is budgeted (see MaxAliasNodes): aliasDepth says whether decoding
	// is inside an alias, alias is the outermost one, aliasNodes counts the nodes decoded
	// through aliases, and overBudget stops decoding (and reporting) once it ran out.
	aliasDepth int
	alias      *yaml.Node
	aliasPath  string
	aliasNodes int
	overBudget bool
}

// MaxAliasNodes caps how many values one file may decode through YAML aliases (*name).
// yaml.v3 guards its own decoding against alias bombs ("billion laughs"), but this
// decoder walks the node tree itself, where a 42 KB file of aliases to aliases expands to
// millions of values and gigabytes. Sharing a few settings by alias stays far below it:
// 500 policies that each alias a 10-value schedule decode 5,000.
const MaxAliasNodes = 20000

// Unmarshaler is implemented by config types that decode themselves from a node.
type Unmarshaler interface {
	UnmarshalConfig(d *Decoder, n *yaml.Node, path string)
}

// Checker is implemented by config structs that check their own fields once decoded.
type Checker interface {
	CheckConfig(c *Check)
}

// KeyRefuser is implemented by config structs that refuse, on purpose, a key people
// expect them to have (a drain block on a target that cannot drain). The message replaces
// "unknown key" and "did you mean", so the error says why, not only that.
type KeyRefuser interface {
	// RefuseKey returns why key is not accepted here, or "" for an ordinary unknown key.
	RefuseKey(key string) string
}

// Check reports mistakes found by a Checker at the position of the offending field.
type Check struct {
	d    *Decoder
	path string
	node *yaml.Node
}

// Errorf records an error on field (a key of the struct being checked, or "" for the struct).
// A field whose value could not be decoded was reported already and is not reported again;
// nor is a check of the struct as a whole when one of its fields failed, since it would
// judge a value the file never gave (an unset ${PASSWORD} is one mistake, not also "user
// and password go together").
func (c *Check) Errorf(field, format string, args ...any) {
	p := JoinPath(c.path, field)
	if c.d.overBudget || c.d.Failed(p) {
		return
	}
	pos, ok := c.d.pos[p]
	if !ok {
		pos = c.d.nodePos(c.node) // the key is absent: point at the struct that lacks it
	}
	c.d.errs.Add(pos, p, format, args...)
}

// Has reports whether field was given in the file and decoded without error. Checks use
// it to look only at values the operator wrote: a value that failed to decode holds a
// zero that the file never said.
func (c *Check) Has(field string) bool {
	p := JoinPath(c.path, field)
	_, ok := c.d.pos[p]
	return ok && !c.d.Failed(p)
}

// Decoder returns the decoder behind the check.
func (c *Check) Decoder() *Decoder { return c.d }

// NewDecoder returns a decoder for one file whose errors go to errs.
func NewDecoder(file string, errs *Errors, lookup func(string) (string, bool)) *Decoder {
	return &Decoder{file: file, errs: errs, lookup: lookup, pos: map[string]Pos{}, failed: map[string]bool{}}
}

// Errorf records an error at node n.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	if d.overBudget {
		return // what follows the alias budget's error is its consequence, not a mistake
	}
	d.failed[path] = true
	d.errs.Add(d.nodePos(n), path, format, args...)
}

// Failed reports whether an error was recorded at path or inside it.
func (d *Decoder) Failed(path string) bool {
	if d.failed[path] {
		return true
	}
	for p := range d.failed {
		if rest, ok := strings.CutPrefix(p, path); ok && path != "" && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "[")) {
			return true
		}
	}
	return false
}

// Pos returns the position of node n in the decoder's file.
func (d *Decoder) Pos(n *yaml.Node) Pos { return d.nodePos(n) }

// File is the name of the file being decoded.
func (d *Decoder) File() string { return d.file }

func (d *Decoder) nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// JoinPath appends key to a dotted key path.
func JoinPath(path, key string) string {
	switch {
	case key == "":
		return path
	case path == "":
		return key
	}
	return path + "." + key
}

// Decode decodes n into the value pointed to by out.
func (d *Decoder) Decode(n *yaml.Node, path string, out any) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("configs: Decode needs a non-nil pointer")
	}
	d.decode(n, path, v.Elem())
}

var (
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

func (d *Decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if d.overBudget {
		return
	}
	if n != nil && n.Kind == yaml.AliasNode {
		if d.aliasDepth == 0 {
			d.alias, d.aliasPath = n, path
		}
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
	}
	n = resolve(n)
	if n == nil {
		return
	}
	if d.aliasDepth > 0 {
		if d.aliasNodes++; d.aliasNodes > MaxAliasNodes {
			d.Errorf(d.alias, d.aliasPath, "alias *%s: aliases expand this file to more than %d values; YAML aliases are for sharing a few settings (write repeated parts out, or put shared settings in defaults:)", d.alias.Value, MaxAliasNodes)
			d.overBudget = true
			return
		}
	}
	d.pos[path] = d.nodePos(n)
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v.Addr().Interface().(Unmarshaler).UnmarshalConfig(d, n, path)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if isNull(n) {
		return // an empty value keeps the default
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		keys, vals, ok := d.MappingKeys(n, path)
		if !ok {
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i, k := range keys {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(vals[i], JoinPath(path, k.Value), elem)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
	case reflect.String:
		if s, ok := d.Scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.Scalar(n, path)
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.Errorf(n, path, "%q is not a boolean (use true or false)", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		s, ok := d.Scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.Errorf(n, path, "%q is not a whole number", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.Scalar(n, path)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.Errorf(n, path, "%q is not a number", s)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("configs: cannot decode into %s", v.Type()))
	}
}

// Scalar returns the env-expanded text of a scalar node, recording an error for any other
// kind of node.
func (d *Decoder) Scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "expected a single value, got %s", describe(n))
		return "", false
	}
	s, err := Expand(n.Value, d.lookup)
	if err != nil {
		d.Errorf(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// offlineScalar is Scalar for a secret under Options.OfflineSecrets: an unset variable
// stands for a placeholder (never empty, so checks such as "user and password go
// together" judge what the file says), and is noted.
func (d *Decoder) offlineScalar(n *yaml.Node, path string) (value string, placeholder bool) {
	r := resolve(n)
	if r.Kind != yaml.ScalarNode {
		v, _ := d.Scalar(n, path)
		return v, false
	}
	var missing []string
	s, err := Expand(r.Value, func(name string) (string, bool) {
		if v, ok := d.lookup(name); ok {
			return v, true
		}
		missing = append(missing, name)
		return "unset-" + name, true
	})
	if err != nil {
		d.Errorf(r, path, "%v", err)
		return "", false
	}
	for _, name := range missing {
		d.note(r, path, "environment variable %s is not set; run will need it", name)
	}
	return s, len(missing) > 0
}

// note records a note for a load under Options.OfflineSecrets.
func (d *Decoder) note(n *yaml.Node, path, format string, args ...any) {
	*d.offline = append(*d.offline, fmt.Sprintf("%s: %s: %s", d.nodePos(n), path, fmt.Sprintf(format, args...)))
}

// exampler is implemented by config structs that are often written as a single value by
// mistake (cooldown: 30s); the example shows the mapping they need.
type exampler interface{ example() string }

func (d *Decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		var hint string
		if e, ok := v.Addr().Interface().(exampler); ok {
			hint = " (write e.g. " + e.example() + ")"
		}
		d.Errorf(n, path, "expected a mapping, got %s%s", describe(n), hint)
		return
	}
	fields := structFields(v.Type())
	keys, vals, _ := d.MappingKeys(n, path)
	seen := make(map[string]bool, len(keys))
	suggested := map[string]bool{}
	for i, k := range keys {
		seen[k.Value] = true
		f, ok := fields.byName[k.Value]
		if !ok {
			if r, isRefuser := v.Addr().Interface().(KeyRefuser); isRefuser {
				if why := r.RefuseKey(k.Value); why != "" {
					d.Errorf(k, path, "%s", why)
					continue
				}
			}
			hint, best := suggest(k.Value, fields.names)
			suggested[best] = true
			d.Errorf(k, path, "unknown key %q%s", k.Value, hint)
			continue
		}
		d.decode(vals[i], JoinPath(path, k.Value), v.FieldByIndex(f.index))
	}
	for _, name := range fields.names {
		f := fields.byName[name]
		// A misspelt required key is one mistake: "did you mean" already names it.
		if f.required && !seen[name] && !suggested[name] {
			d.Errorf(n, path, "missing required key %q", name)
		}
	}
	if c, ok := v.Addr().Interface().(Checker); ok {
		c.CheckConfig(&Check{d: d, path: path, node: n})
	}
}

type field struct {
	index    []int
	required bool
}

type fieldSet struct {
	byName map[string]field
	names  []string
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

// structFields lists the yaml-tagged fields of t, flattening `yaml:",inline"` structs.
func structFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]field{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			tag, ok := sf.Tag.Lookup("yaml")
			if !ok || tag == "-" || !sf.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			if opts == "inline" {
				walk(sf.Type, idx)
				continue
			}
			fs.byName[name] = field{index: idx, required: sf.Tag.Get("required") == "true"}
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	sort.Strings(fs.names)
	fieldCache.Store(t, fs)
	return fs
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && (n.Value == "" || n.Value == "~" || n.Value == "null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// MappingKeys returns the key/value pairs of a mapping node, reporting duplicates.
func (d *Decoder) MappingKeys(n *yaml.Node, path string) (keys []*yaml.Node, vals []*yaml.Node, ok bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "expected a mapping, got %s", describe(n))
		return nil, nil, false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if first, dup := seen[k.Value]; dup {
			d.Errorf(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		keys = append(keys, k)
		vals = append(vals, n.Content[i+1])
	}
	return keys, vals, true
}

// Record notes the position of a path decoded by a custom Unmarshaler so checks can point at it.
func (d *Decoder) Record(n *yaml.Node, path string) { d.pos[path] = d.nodePos(resolve(n)) }
