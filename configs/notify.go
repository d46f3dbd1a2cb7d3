package configs

import (
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/plugin"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The events a notification sink can subscribe to. The list is the contract of the
// `events:` filter; package notify sends exactly these.
const (
	EventScaled          = "scaled"
	EventScaleFailed     = "scale_failed"
	EventFallbackEntered = "fallback_entered"
	EventFallbackLeft    = "fallback_left"
	EventPaused          = "paused"
	EventResumed         = "resumed"
	EventDrainTimedOut   = "drain_timed_out"
	EventConfigReloaded  = "config_reloaded"
	EventConfigFailed    = "config_failed"
)

// NotifyEvents lists every event name, in the order the docs give them.
var NotifyEvents = []string{
	EventScaled, EventScaleFailed, EventFallbackEntered, EventFallbackLeft,
	EventPaused, EventResumed, EventDrainTimedOut, EventConfigReloaded, EventConfigFailed,
}

// Notify lists where events go, in file order. At the top level it receives the events
// of every policy and of the daemon (reloads); a policy's own list receives that
// policy's events in addition.
type Notify []*Sink

// Sink is one destination of notifications: exactly one sink kind (webhook), plus the keys
// every kind has.
type Sink struct {
	// Name identifies the sink in metrics and logs (never its URL, which may hold a
	// token). It defaults to what the kind's config says (a webhook's host).
	Name string
	// Events is the filter; empty means every event.
	Events []string
	Kind   string
	Config any // pointer to the kind's config struct
	Pos    Pos
}

// Wants reports whether the sink subscribes to event.
func (s *Sink) Wants(event string) bool {
	return len(s.Events) == 0 || slices.Contains(s.Events, event)
}

// SinkNamer is implemented by sink configs that can name their sink when the file does
// not.
type SinkNamer interface {
	SinkName() string
}

// Sink kinds register in internal/plugin (class plugin.Sink), as query and target kinds do.
var sinkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

func (*Notify) example() string {
	return "notify: [ { events: [scaled], webhook: { url: https://hooks.example.com/x } } ]"
}

// UnmarshalConfig implements Unmarshaler.
func (ns *Notify) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "expected a list of sinks, got %s (write e.g. %s)", describe(n), ns.example())
		return
	}
	type named struct {
		sink *Sink
		pos  Pos
	}
	seen := map[string]named{}
	for i, item := range n.Content {
		spath := fmt.Sprintf("%s[%d]", path, i)
		s := &Sink{Pos: d.Pos(item)}
		namePos := s.Pos
		gaveName := false
		common := map[string]func(*yaml.Node, string){
			"name": func(n *yaml.Node, p string) {
				if v, ok := d.Scalar(n, p); ok {
					namePos, gaveName = d.Pos(n), true
					if !sinkNameRE.MatchString(v) {
						d.Errorf(n, p, "%q is not a valid sink name (use lower-case letters, digits, '.', '-' and '_', e.g. %q)", v, nameLike(v, '-'))
						return
					}
					s.Name = v
				}
			},
			"events": func(n *yaml.Node, p string) { s.Events = decodeEvents(d, n, p) },
		}
		kind, cfg, ok := decodeOneOf(d, item, spath, plugin.Sink, common)
		if !ok {
			continue
		}
		s.Kind, s.Config = kind, cfg
		if !gaveName {
			if nm, ok := cfg.(SinkNamer); ok {
				s.Name = nm.SinkName()
			}
			if s.Name == "" {
				// Only when the kind cannot tell (a URL that is a placeholder under
				// validate): unique, so that it raises no "second sink" error run would not.
				s.Name = fmt.Sprintf("%s-%d", kind, i+1)
			}
		}
		if s.Name == "" || d.Failed(spath) {
			continue
		}
		if first, dup := seen[s.Name]; dup {
			how := ""
			if !gaveName {
				how = "; the name defaults to the webhook's host, so give each sink its own name"
			}
			d.Errorf(item, spath, "a second sink named %q (first at %s)%s", s.Name, first.pos, how)
			continue
		}
		seen[s.Name] = named{s, namePos}
		*ns = append(*ns, s)
	}
}

func decodeEvents(d *Decoder, n *yaml.Node, path string) []string {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, path, "expected a list of events, got %s (e.g. [scaled, scale_failed]; leave events out for all of them)", describe(n))
		return nil
	}
	var out []string
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		v, ok := d.Scalar(item, p)
		if !ok {
			continue
		}
		if !slices.Contains(NotifyEvents, v) {
			d.Errorf(item, p, "unknown event %q (want one of %s)%s", v, strings.Join(NotifyEvents, ", "), didYouMean(v, NotifyEvents))
			continue
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(n.Content) == 0 {
		d.Errorf(n, path, "is empty, so the sink would receive nothing; leave events out for all of them")
	}
	return out
}

// PageURL is the status page's address as operators reach it (behind a proxy, say):
// notifications link to it. Empty means http://<listen>/.
type PageURL string

// UnmarshalConfig implements Unmarshaler.
func (p *PageURL) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	v, ok := d.Scalar(n, path)
	if !ok {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Errorf(n, path, "%q is not an http:// or https:// URL (e.g. https://autoscaler.example.com/)", v)
		return
	}
	*p = PageURL(v)
}

// Or returns the page URL, or the one the listen address gives.
func (p PageURL) Or(listen string) string {
	if p != "" {
		return string(p)
	}
	return "http://" + listen + "/"
}
