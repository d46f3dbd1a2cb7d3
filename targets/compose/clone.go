package compose

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// clonePlan turns one inspected container of the service into the create request for a
// replica with another number. It is built once per scale-up and shared by the
// concurrent creates, which draw numbers from it.
type clonePlan struct {
	project, service string
	sep              string // "-" (compose v2) or "_" (compose v1), as the template's name
	tmpl             container.InspectResponse
	image            string
	primary          string // the network given at create time ("" for host, none, container:...)
	networks         []string

	mu   sync.Mutex
	next int // highest number handed out so far
}

// endpoint is the settings for one network of a clone.
type endpoint struct {
	network  string
	settings *network.EndpointSettings
}

// cloneSpec is one create request.
type cloneSpec struct {
	name          string
	config        *container.Config
	host          *container.HostConfig
	networking    *network.NetworkingConfig
	extraNetworks []endpoint // connected after create, before start (API < 1.44 takes one at create)
}

// newClonePlan checks that tmpl's service can have more than one replica and that tmpl
// follows compose's naming.
func newClonePlan(project, service string, tmpl container.InspectResponse) (*clonePlan, error) {
	if tmpl.Config == nil || tmpl.HostConfig == nil {
		return nil, fmt.Errorf("container %s: inspect returned no config", tmpl.ID)
	}
	name := trimSlash(tmpl.Name)
	sep, ok := nameScheme(project, service, name, tmpl.Config.Labels[labelNumber])
	if !ok {
		return nil, fmt.Errorf("cannot scale: its container is named %q (container_name: in the compose file), and a container name can be used only once; remove container_name to let compose (and autoscalerd) name the replicas %s_%s_N", name, project, service)
	}
	if port, host, ok := fixedHostPort(tmpl.HostConfig.PortBindings); ok {
		return nil, fmt.Errorf("cannot scale: container %s publishes container port %s on fixed host port %s, which only one replica can bind; publish the container port alone (ports: [\"%s\"]) or a host port range, and put a load balancer in front", name, port, host, portNumber(port))
	}
	p := &clonePlan{project: project, service: service, sep: sep, tmpl: tmpl}
	mode := string(tmpl.HostConfig.NetworkMode)
	if tmpl.NetworkSettings != nil {
		for net := range tmpl.NetworkSettings.Networks {
			p.networks = append(p.networks, net)
		}
	}
	sort.Strings(p.networks)
	switch {
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") || strings.HasPrefix(mode, "service:"):
		// Shares another network stack: nothing to attach.
		p.networks = nil
	case slices.Contains(p.networks, mode):
		p.primary = mode
	case len(p.networks) > 0:
		// "default" or "bridge" while attached elsewhere: give the first at create time.
		p.primary = p.networks[0]
	}
	return p, nil
}

// nameScheme reports the separator of a compose-made container name: "proj_svc_3" (v1)
// or "proj-svc-3" (v2). Anything else was set with container_name.
func nameScheme(project, service, name, number string) (string, bool) {
	for _, sep := range []string{"-", "_"} {
		prefix := project + sep + service + sep
		if rest, ok := strings.CutPrefix(name, prefix); ok && (rest == number || isDigits(rest)) {
			return sep, true
		}
	}
	return "", false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// fixedHostPort finds a binding to one fixed host port ("8080:80"). Ephemeral ("80",
// HostPort "" or "0") and ranges ("8000-8010:80", where the engine picks a free one) can
// be given to every replica.
func fixedHostPort(pm network.PortMap) (port, host string, ok bool) {
	keys := make([]string, 0, len(pm))
	byKey := map[string][]network.PortBinding{}
	for p, bs := range pm {
		keys = append(keys, p.String())
		byKey[p.String()] = bs
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, b := range byKey[k] {
			if b.HostPort != "" && b.HostPort != "0" && !strings.Contains(b.HostPort, "-") {
				return k, b.HostPort, true
			}
		}
	}
	return "", "", false
}

func portNumber(p string) string { n, _, _ := strings.Cut(p, "/"); return n }

func trimSlash(name string) string { return strings.TrimPrefix(name, "/") }

func (p *clonePlan) allocate() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	return p.next
}

func (p *clonePlan) name(num int) string {
	return p.project + p.sep + p.service + p.sep + strconv.Itoa(num)
}

// anonymousVolume matches the names the engine gives anonymous volumes.
var anonymousVolume = regexp.MustCompile(`^[0-9a-f]{64}$`)

// spec is the create request for replica num. Everything is copied from the template
// (config-hash included: compose compares it to the compose file, and the clone was made
// from the same file), except what must differ per replica: name, number, hostname,
// anonymous volumes, and per-network addresses.
func (p *clonePlan) spec(num int) cloneSpec {
	t := p.tmpl
	name := p.name(num)

	cfg := *t.Config
	cfg.Image = p.image
	cfg.Labels = maps.Clone(t.Config.Labels)
	cfg.Labels[labelNumber] = strconv.Itoa(num)
	cfg.Env = slices.Clone(t.Config.Env)
	cfg.Volumes = maps.Clone(t.Config.Volumes)
	// The engine defaults the hostname to the short container ID; keep one the user set.
	if len(t.ID) >= 12 && cfg.Hostname == t.ID[:12] {
		cfg.Hostname = ""
	}

	host := *t.HostConfig
	host.ContainerIDFile = ""
	host.Binds = nil
	for _, b := range t.HostConfig.Binds {
		src, rest, _ := strings.Cut(b, ":")
		if anonymousVolume.MatchString(src) {
			// The template's own anonymous volume (compose v1 re-binds it on recreate):
			// a clone gets a fresh one instead of sharing it.
			dst, _, _ := strings.Cut(rest, ":")
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[dst] = struct{}{}
			continue
		}
		host.Binds = append(host.Binds, b)
	}
	host.Mounts = nil
	for _, m := range t.HostConfig.Mounts {
		if m.Type == mount.TypeVolume && anonymousVolume.MatchString(m.Source) {
			m.Source = ""
		}
		host.Mounts = append(host.Mounts, m)
	}
	// Legacy links come back from inspect as "/db_1:/shop_worker_1/db"; create wants "db_1:db".
	host.Links = nil
	for _, l := range t.HostConfig.Links {
		src, alias, ok := strings.Cut(l, ":")
		if ok {
			l = trimSlash(src) + ":" + path.Base(alias)
		}
		host.Links = append(host.Links, l)
	}

	s := cloneSpec{name: name, config: &cfg, host: &host}
	for _, ep := range p.endpoints(name) {
		if ep.network == p.primary {
			s.networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{ep.network: ep.settings}}
			continue
		}
		s.extraNetworks = append(s.extraNetworks, ep)
	}
	return s
}

// endpoints are the clone's network attachments: the template's networks, with the
// aliases compose gives a replica (its container name, the service name, and the aliases
// configured in the compose file), and no fixed IP or MAC address.
func (p *clonePlan) endpoints(name string) []endpoint {
	var out []endpoint
	for _, net := range p.networks {
		tep := p.tmpl.NetworkSettings.Networks[net]
		ep := &network.EndpointSettings{
			Links:      slices.Clone(tep.Links),
			DriverOpts: maps.Clone(tep.DriverOpts),
			GwPriority: tep.GwPriority,
		}
		// The default bridge takes no aliases.
		if net != "bridge" {
			ep.Aliases = p.aliases(tep.Aliases, name)
		}
		out = append(out, endpoint{network: net, settings: ep})
	}
	return out
}

func (p *clonePlan) aliases(tmpl []string, name string) []string {
	tmplName := trimSlash(p.tmpl.Name)
	out := []string{name, p.service}
	for _, a := range tmpl {
		// Drop what belongs to the template alone: its name and the short ID the engine
		// adds (API < 1.45 lists it among the aliases).
		if a == tmplName || (len(p.tmpl.ID) >= 12 && a == p.tmpl.ID[:12]) || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}
