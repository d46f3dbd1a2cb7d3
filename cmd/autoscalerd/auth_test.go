package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestTokenAndSecrets runs the daemon on a non-loopback listen address: POSTs need the
// bearer token, and no secret of the configuration appears in the log, the API, the status
// page or the metrics — even while the query that carries them fails.
func TestTokenAndSecrets(t *testing.T) {
	const token, bearer = "tok-4b1d9e7c", "bearer-93ac51f0"
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Header.Get("Authorization") != "Bearer "+bearer {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "bad token %s", r.Header.Get("Authorization")) // echo it back, as some servers do
			return
		}
		if calls%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "oops, your token was %s", bearer)
			return
		}
		fmt.Fprint(w, `{"depth": 5}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
api_token: ${TEST_API_TOKEN}
policies:
  - name: sec
    target: { process: { command: ["sleep", "3600.5"] } }
    max: 2
    interval: 200ms
    dry_run: true
    queries:
      depth:
        http:
          url: %s/stats?token=%s
          bearer_token: ${TEST_BEARER}
          value: depth
    replicas: ceil(depth / 10)
`, srv.URL, bearer)), 0o644)
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(binary(t), "run", "-c", cfg, "--listen", fmt.Sprintf("0.0.0.0:%d", port), "--state-dir", filepath.Join(dir, "state"), "--log-level", "debug")
	cmd.Env = append(os.Environ(), "TEST_API_TOKEN="+token, "TEST_BEARER="+bearer)
	logFile, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stderr, cmd.Stdout = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && calls < 6 {
		time.Sleep(100 * time.Millisecond)
	}
	if calls < 6 {
		t.Fatalf("the query was called %d times", calls)
	}
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/policies/sec/pause", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("POST without a token: %d, want 401", code)
	}
	if code := post("Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("POST with a wrong token: %d, want 401", code)
	}
	if code := post("Bearer " + token); code != http.StatusOK {
		t.Errorf("POST with the token: %d, want 200", code)
	}
	seen := map[string]string{
		"/v1/policies":     get("/v1/policies"),
		"/v1/policies/sec": get("/v1/policies/sec"),
		"/":                get("/"),
		"/metrics":         get("/metrics"),
	}
	if !strings.Contains(seen["/v1/policies/sec"], "500") {
		t.Errorf("the failing query's error is not reported: %s", seen["/v1/policies/sec"])
	}
	cmd.Process.Kill()
	cmd.Wait()
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	seen["log"] = string(log)
	for where, text := range seen {
		if text == "" && where != "log" {
			t.Errorf("%s: empty", where)
		}
		for _, secret := range []string{token, bearer} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a secret (%s...)", where, secret[:4])
			}
		}
	}
}
