package compose

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) { plugintest.SampleDecodes[Config](t, sample, nil) }

func TestConfig(t *testing.T) {
	const head = "policies:\n  - name: p\n    max: 3\n    replicas: \"1\"\n    target:\n      compose:\n"
	for _, tc := range []struct {
		name, body, wantErr string
		check               func(*testing.T, *Config)
	}{
		{name: "defaults", body: "        project: shop\n        service: worker\n", check: func(t *testing.T, c *Config) {
			if c.StopTimeout >= 0 || c.RemoveVolumes {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "all keys", body: "        project: shop\n        service: worker\n        stop_timeout: 30s\n        remove_volumes: true\n", check: func(t *testing.T, c *Config) {
			if c.StopTimeout.D().Seconds() != 30 || !c.RemoveVolumes {
				t.Errorf("decoded %+v", c)
			}
		}},
		{name: "service missing", body: "        project: shop\n", wantErr: `a.yaml:7:9: policies[0].target.compose: missing required key "service"`},
		{name: "empty project", body: "        project: \"\"\n        service: worker\n", wantErr: "policies[0].target.compose.project: must not be empty"},
		{name: "negative stop_timeout", body: "        project: shop\n        service: worker\n        stop_timeout: -1s\n", wantErr: "policies[0].target.compose.stop_timeout: \"-1s\": a duration must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configs.Parse("a.yaml", []byte(head+tc.body), configs.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Policies[0].Target.Config.(*Config)
			if k := cfg.Policies[0].Target.Key(); k != "compose:shop/worker" {
				t.Errorf("target key %q", k)
			}
			tc.check(t, c)
		})
	}
}

func TestNameScheme(t *testing.T) {
	for _, tc := range []struct {
		name, number, sep string
		ok                bool
	}{
		{"shop_worker_1", "1", "_", true},
		{"shop-worker-12", "12", "-", true},
		{"shop-worker-3", "", "-", true},
		{"my-worker", "1", "", false},   // container_name
		{"shop_worker", "1", "", false}, // container_name that looks close
		{"shop_worker_1_abc", "1", "", false},
	} {
		sep, ok := nameScheme("shop", "worker", tc.name, tc.number)
		if sep != tc.sep || ok != tc.ok {
			t.Errorf("nameScheme(%q) = %q, %v; want %q, %v", tc.name, sep, ok, tc.sep, tc.ok)
		}
	}
}

func TestFixedHostPort(t *testing.T) {
	p := network.MustParsePort("80/tcp")
	for _, tc := range []struct {
		name  string
		host  string
		fixed bool
	}{
		{"container port only", "", false},
		{"ephemeral", "0", false},
		{"range", "8000-8010", false},
		{"fixed", "8080", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, host, fixed := fixedHostPort(network.PortMap{p: {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: tc.host}}})
			if fixed != tc.fixed || (fixed && host != tc.host) {
				t.Fatalf("fixedHostPort = %q, %v; want %v", host, fixed, tc.fixed)
			}
		})
	}
}

const tmplID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var anonVol = strings.Repeat("a", 64)

func template() container.InspectResponse {
	return container.InspectResponse{
		ID:    tmplID,
		Name:  "/shop_worker_1",
		Image: "sha256:feed",
		Config: &container.Config{
			Hostname: tmplID[:12],
			Image:    "shop/worker:latest",
			Env:      []string{"A=1"},
			Labels: map[string]string{
				labelProject: "shop", labelService: "worker", labelNumber: "1",
				"com.docker.compose.config-hash": "abc",
			},
			Volumes: map[string]struct{}{"/data": {}},
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "shop_default",
			Binds:       []string{anonVol + ":/data:rw", "shop_cache:/cache:rw", "/etc/app:/etc/app:ro"},
			Links:       []string{"/shop_db_1:/shop_worker_1/db"},
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: anonVol, Target: "/scratch"}, {Type: mount.TypeBind, Source: "/srv", Target: "/srv"}},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"shop_default": {
				Aliases:    []string{"worker", "jobs", tmplID[:12], "shop_worker_1"},
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.20.0.5")},
				IPAddress:  netip.MustParseAddr("172.20.0.5"),
			},
			"shop_back": {Aliases: []string{"worker", tmplID[:12]}},
		}},
	}
}

func TestCloneSpec(t *testing.T) {
	p, err := newClonePlan("shop", "worker", template())
	if err != nil {
		t.Fatal(err)
	}
	p.image = "shop/worker:latest"
	s := p.spec(4)

	if s.name != "shop_worker_4" {
		t.Errorf("name %q", s.name)
	}
	if got := s.config.Labels[labelNumber]; got != "4" {
		t.Errorf("number label %q", got)
	}
	if got := s.config.Labels["com.docker.compose.config-hash"]; got != "abc" {
		t.Errorf("config-hash %q, want the template's", got)
	}
	if p.tmpl.Config.Labels[labelNumber] != "1" {
		t.Error("the template's labels were changed")
	}
	if s.config.Hostname != "" {
		t.Errorf("hostname %q, want the engine's default", s.config.Hostname)
	}
	if !slices.Equal(s.host.Binds, []string{"shop_cache:/cache:rw", "/etc/app:/etc/app:ro"}) {
		t.Errorf("binds %v: the anonymous volume must not be shared", s.host.Binds)
	}
	if _, ok := s.config.Volumes["/data"]; !ok {
		t.Errorf("volumes %v: /data must get a fresh anonymous volume", s.config.Volumes)
	}
	if s.host.Mounts[0].Source != "" || s.host.Mounts[1].Source != "/srv" {
		t.Errorf("mounts %+v", s.host.Mounts)
	}
	if !slices.Equal(s.host.Links, []string{"shop_db_1:db"}) {
		t.Errorf("links %v", s.host.Links)
	}
	def := s.networking.EndpointsConfig["shop_default"]
	if def == nil || len(s.networking.EndpointsConfig) != 1 {
		t.Fatalf("create-time networks %v, want shop_default only", s.networking.EndpointsConfig)
	}
	if want := []string{"shop_worker_4", "worker", "jobs"}; !slices.Equal(def.Aliases, want) {
		t.Errorf("aliases %v, want %v", def.Aliases, want)
	}
	if def.IPAMConfig != nil || def.IPAddress.IsValid() {
		t.Errorf("the static IP was copied: %+v", def)
	}
	if len(s.extraNetworks) != 1 || s.extraNetworks[0].network != "shop_back" ||
		!slices.Equal(s.extraNetworks[0].settings.Aliases, []string{"shop_worker_4", "worker"}) {
		t.Errorf("extra networks %+v", s.extraNetworks)
	}
}

func TestCloneSpecVariants(t *testing.T) {
	t.Run("user hostname kept", func(t *testing.T) {
		tm := template()
		tm.Config.Hostname = "worker-host"
		p, _ := newClonePlan("shop", "worker", tm)
		if h := p.spec(2).config.Hostname; h != "worker-host" {
			t.Errorf("hostname %q", h)
		}
	})
	t.Run("compose v2 names", func(t *testing.T) {
		tm := template()
		tm.Name = "/shop-worker-1"
		p, err := newClonePlan("shop", "worker", tm)
		if err != nil {
			t.Fatal(err)
		}
		if n := p.spec(2).name; n != "shop-worker-2" {
			t.Errorf("name %q", n)
		}
	})
	t.Run("host network", func(t *testing.T) {
		tm := template()
		tm.HostConfig.NetworkMode = "host"
		tm.NetworkSettings.Networks = map[string]*network.EndpointSettings{"host": {}}
		p, _ := newClonePlan("shop", "worker", tm)
		s := p.spec(2)
		if s.networking != nil || len(s.extraNetworks) != 0 || s.host.NetworkMode != "host" {
			t.Errorf("host network: %+v %+v %q", s.networking, s.extraNetworks, s.host.NetworkMode)
		}
	})
	t.Run("numbers are drawn once", func(t *testing.T) {
		p, _ := newClonePlan("shop", "worker", template())
		p.next = 3
		if a, b := p.allocate(), p.allocate(); a != 4 || b != 5 {
			t.Errorf("allocate = %d, %d", a, b)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		tm := template()
		tm.Name = "/the-worker"
		if _, err := newClonePlan("shop", "worker", tm); err == nil || !strings.Contains(err.Error(), "container_name") {
			t.Errorf("container_name: %v", err)
		}
		tm = template()
		tm.HostConfig.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}
		if _, err := newClonePlan("shop", "worker", tm); err == nil || !strings.Contains(err.Error(), "fixed host port 8080") {
			t.Errorf("fixed port: %v", err)
		}
	})
}
