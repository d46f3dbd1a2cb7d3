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
)

// Prometheus is a Prometheus server started for one test.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
}

// StartPrometheus starts the Debian prometheus binary on a free loopback port, with its
// data in a temp dir, scraping every target (host:port, path /metrics) once a second, and
// waits until it is ready. It stops when the test ends.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
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
	startServer(t, "prometheus", dir, cmd)
	p := &Prometheus{URL: "http://" + addr}
	if err := waitHTTP(context.Background(), p.URL+"/-/ready", 30*time.Second); err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	return p
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
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
			if resp.StatusCode == http.StatusOK {
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
