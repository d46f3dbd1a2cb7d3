package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Prometheus is a Prometheus server started for one test.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// Targets are scraped once a second at host:port/metrics.
	Targets []string
	// Users, when set, protect the web API with basic auth (name → password), through
	// Prometheus's own --web.config.file.
	Users map[string]string
}

// StartPrometheus starts the Debian prometheus binary on a free loopback port, with its
// data in a temp dir, and waits until it is ready. It stops when the test ends.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	targets := opts.Targets
	bin := LookPath(t, "prometheus", "apt-get install prometheus")
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, target := range targets {
		quoted[i] = fmt.Sprintf("%q", target)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(bin,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	if len(opts.Users) > 0 {
		web := "basic_auth_users:\n"
		for name, password := range opts.Users {
			hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			web += fmt.Sprintf("  %q: %q\n", name, hash)
		}
		webPath := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(webPath, []byte(web), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Args = append(cmd.Args, "--web.config.file="+webPath)
	}
	startServer(t, "prometheus", dir, cmd)
	p := &Prometheus{URL: "http://" + addr}
	// /-/ready sits behind basic auth too; 401 proves the server is up.
	if err := waitHTTP(context.Background(), p.URL+"/-/ready", 30*time.Second, len(opts.Users) > 0); err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	return p
}

// waitHTTP waits until GET url answers 200 (or 401, if authOK).
func waitHTTP(ctx context.Context, url string, timeout time.Duration, authOK bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || authOK && resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
