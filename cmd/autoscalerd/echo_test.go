package main_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestEchoedBasicAuthNeverShown: a server that answers with the request's Authorization
// header in its error body gets basic auth (and, from a second policy, URL user info);
// neither the password nor its base64 reaches the log, the API, the page or the metrics,
// while the error itself is shown.
func TestEchoedBasicAuthNeverShown(t *testing.T) {
	const user, pass, urlPass = "scaler", "pa55-echo-7c1", "url-echo-9d2"
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "forbidden; you sent Authorization: %s", r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	withUser := strings.Replace(srv.URL, "http://", "http://"+user+":"+urlPass+"@", 1)
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
policies:
  - name: basic
    target: { process: { command: ["sleep", "3600.81"] } }
    max: 2
    interval: 200ms
    dry_run: true
    queries:
      depth: { http: { url: %s/q, value: depth, basic_auth: { username: %s, password: "${ECHO_PASS}" } } }
    replicas: ceil((depth ?? 10) / 10)
  - name: userinfo
    target: { process: { command: ["sleep", "3600.82"] } }
    max: 2
    interval: 200ms
    dry_run: true
    queries:
      depth: { http: { url: "%s/q", value: depth } }
    replicas: ceil((depth ?? 10) / 10)
`, srv.URL, user, withUser), 0o644)
	t.Setenv("ECHO_PASS", pass) // the daemon inherits it
	d := startDaemon(t, cfg, "--log-level", "debug")
	d.waitFor("a few failed queries", 10*time.Second, func() bool { return calls.Load() >= 6 })
	get := func(path string) string {
		resp, err := http.Get("http://" + d.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	seen := map[string]string{"/v1/policies": get("/v1/policies"), "/v1/policies/basic": get("/v1/policies/basic"), "/": get("/"), "/metrics": get("/metrics")}
	if !strings.Contains(seen["/v1/policies"], "403 Forbidden") || !strings.Contains(seen["/v1/policies"], `Basic \u003credacted\u003e`) {
		t.Errorf("the failing queries' errors are not shown (redacted): %s", seen["/v1/policies"])
	}
	seen["log"] = d.logText()
	never := []string{pass, urlPass,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + urlPass))}
	for where, text := range seen {
		for _, secret := range never {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %q", where, secret)
			}
		}
	}
}
