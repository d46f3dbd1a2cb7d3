package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guardConfig is a loopback daemon without api_token, the set-up a hostile web page on
// the operator's machine would target.
const guardConfig = `
allowed_hosts: [autoscaler.internal]
policies:
  - name: guarded
    target: { process: { command: ["sleep", "3600.7"] } }
    max: 2
    interval: 200ms
    dry_run: true
    queries:
      depth: { file: { path: %s } }
    replicas: ceil(depth / 10)
`

type probe struct {
	method, path, host string
	header             map[string]string
	body               string
}

func (d *daemon) send(t *testing.T, p probe) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(p.method, "http://"+d.addr+p.path, strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	if p.host != "" {
		req.Host = p.host
	}
	for k, v := range p.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", p.method, p.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHTTPGuards drives the built daemon's real HTTP server as a browser under an
// attacker's control would: a cross-site POST, a DNS-rebinding Host, oversized and
// malformed bodies, unknown methods; and checks the page's security headers.
func TestHTTPGuards(t *testing.T) {
	dir := t.TempDir()
	depth := filepath.Join(dir, "depth")
	os.WriteFile(depth, []byte("5\n"), 0o644)
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, guardConfig, depth), 0o644)
	d := startDaemon(t, cfg)
	_, port, _ := strings.Cut(d.addr, ":")

	for _, tc := range []struct {
		name string
		p    probe
		code int
		says string
	}{
		{"cross-site form POST pauses nothing", probe{method: "POST", path: "/v1/policies/guarded/pause",
			header: map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}}, 403, "cross-origin"},
		{"cross-origin POST without Sec-Fetch-Site", probe{method: "POST", path: "/v1/reload",
			header: map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}}, 403, "cross-origin"},
		{"rebinding Host reads nothing", probe{method: "GET", path: "/v1/policies", host: "evil.example:" + port}, 421, `Host evil.example:` + port + ` is not allowed`},
		{"rebinding Host on the page", probe{method: "GET", path: "/", host: "evil.example"}, 421, "allowed_hosts"},
		{"rebinding Host on a POST", probe{method: "POST", path: "/v1/reload", host: "evil.example:" + port}, 421, "not allowed"},
		{"oversized body", probe{method: "POST", path: "/v1/policies/guarded/pause", body: strings.Repeat("x", 1<<20)}, 413, "too large"},
		{"malformed body", probe{method: "POST", path: "/v1/policies/guarded/pause", body: "pause=1"}, 400, "not JSON"},
		{"unknown method on an action", probe{method: "PUT", path: "/v1/reload"}, 405, ""},
		{"unknown method on a policy", probe{method: "DELETE", path: "/v1/policies/guarded"}, 405, ""},
		{"GET on an action", probe{method: "GET", path: "/v1/policies/guarded/pause"}, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := d.send(t, tc.p)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("%s %s: %d %q; want %d and %q", tc.p.method, tc.p.path, code, body, tc.code, tc.says)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff on a %d answer", code)
			}
		})
	}
	if d.policy("guarded").Paused {
		t.Fatal("a refused request paused the policy")
	}

	// What must keep working: localhost and IP literals with the port, the configured name,
	// same-origin POSTs from the page, and clients that send no Origin (curl, status).
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "autoscaler.internal", "AUTOSCALER.internal:" + port} {
		if code, _, body := d.send(t, probe{method: "GET", path: "/v1/policies", host: host}); code != 200 {
			t.Errorf("GET with Host %s: %d %s", host, code, body)
		}
	}
	if code, _, body := d.send(t, probe{method: "POST", path: "/v1/policies/guarded/pause",
		header: map[string]string{"Origin": "http://" + d.addr, "Sec-Fetch-Site": "same-origin"}}); code != 200 {
		t.Errorf("same-origin pause: %d %s", code, body)
	}
	if code, _, body := d.send(t, probe{method: "POST", path: "/v1/policies/guarded/resume", body: "{}",
		header: map[string]string{"Content-Type": "application/json"}}); code != 200 {
		t.Errorf("resume with {} and no Origin: %d %s", code, body)
	}

	code, h, _ := d.send(t, probe{method: "GET", path: "/"})
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("page CSP %q lacks %q", csp, want)
		}
	}
	// The page's own script (pause/resume) runs by its per-answer nonce; nothing else.
	if !regexp.MustCompile(`script-src 'nonce-[A-Za-z0-9_-]{16,}'(;|$)`).MatchString(csp) || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "script-src 'unsafe-inline'") {
		t.Errorf("page CSP %q allows scripts other than the page's own", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("page headers: X-Frame-Options %q, X-Content-Type-Options %q", h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
	}
}

// TestTokenComparison: with api_token set, only the exact token passes, whether a wrong
// one is shorter, longer, a prefix or differs in the last byte.
func TestTokenComparison(t *testing.T) {
	dir := t.TempDir()
	depth := filepath.Join(dir, "depth")
	os.WriteFile(depth, []byte("5\n"), 0o644)
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	os.WriteFile(cfg, append([]byte("api_token: tok-71c2a9\n"), fmt.Appendf(nil, guardConfig, depth)...), 0o644)
	d := startDaemon(t, cfg)
	for _, tok := range []string{"", "tok", "tok-71c2a", "tok-71c2a8", "tok-71c2a99", "TOK-71C2A9"} {
		code, _, _ := d.send(t, probe{method: "POST", path: "/v1/policies/guarded/pause", header: map[string]string{"Authorization": "Bearer " + tok}})
		if code != 401 {
			t.Errorf("token %q: %d, want 401", tok, code)
		}
	}
	if code, _, body := d.send(t, probe{method: "POST", path: "/v1/policies/guarded/pause", header: map[string]string{"Authorization": "Bearer tok-71c2a9"}}); code != 200 {
		t.Errorf("right token: %d %s", code, body)
	}
}
