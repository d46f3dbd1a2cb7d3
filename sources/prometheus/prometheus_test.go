package prometheus

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) { plugintest.SampleDecodes[Config](t, sample, nil) }

func newSource(t *testing.T, cfg *Config) sources.Source {
	t.Helper()
	src, err := New(cfg, sources.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src
}

// exporter serves nats_queue_depth for two consumers in the text exposition format, the
// way the seed's worker does on /api/metrics.
type exporter struct{ batch, other atomic.Int64 }

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE nats_queue_depth gauge\n")
	fmt.Fprintf(w, "nats_queue_depth{consumer=\"batch-processor\"} %d\n", e.batch.Load())
	fmt.Fprintf(w, "nats_queue_depth{consumer=\"email-sender\"} %d\n", e.other.Load())
}

// eventually polls src until it yields want (Prometheus scrapes once a second).
func eventually(t *testing.T, src sources.Source, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got float64
	var err error
	for time.Now().Before(deadline) {
		if got, err = plugintest.Value(t, src); err == nil && got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("value never became %g: last got %g, err %v", want, got, err)
}

func TestRealPrometheus(t *testing.T) {
	exp := &exporter{}
	exp.batch.Store(1234)
	exp.other.Store(7)
	srv := httptest.NewServer(exp)
	defer srv.Close()
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{Targets: []string{strings.TrimPrefix(srv.URL, "http://")}})

	depth := newSource(t, &Config{Address: prom.URL, Query: `nats_queue_depth{consumer="batch-processor"}`})
	t.Run("value follows the exporter", func(t *testing.T) {
		start := time.Now()
		eventually(t, depth, 1234)
		t.Logf("first value %s after Prometheus was ready", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		exp.batch.Store(4321)
		eventually(t, depth, 4321)
		t.Logf("the change showed %s after the exporter changed", time.Since(start).Round(time.Millisecond))
	})

	zero := 0.0
	cases := []struct {
		name    string
		query   string
		emptyAs *float64
		want    float64
		wantErr []string
	}{
		{name: "scalar", query: `scalar(nats_queue_depth{consumer="email-sender"}) * 3`, want: 21},
		{name: "aggregated vector", query: `sum(nats_queue_depth)`, want: 4321 + 7},
		{name: "two series", query: `nats_queue_depth`, wantErr: []string{
			"returned 2 series, want exactly one", `consumer="batch-processor"`, `consumer="email-sender"`, "sum(",
		}},
		{name: "empty", query: `nats_queue_depth{consumer="nobody"}`, wantErr: []string{
			"no data (set empty_as: 0 if an empty result means zero)",
		}},
		{name: "empty as zero", query: `nats_queue_depth{consumer="nobody"}`, emptyAs: &zero, want: 0},
		{name: "range vector", query: `nats_queue_depth{consumer="batch-processor"}[1m]`, wantErr: []string{"range vector"}},
		{name: "bad PromQL", query: `sum(nats_queue_depth`, wantErr: []string{"bad_data", "parse error"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, &Config{Address: prom.URL, Query: tc.query, EmptyAs: tc.emptyAs})
			got, err := plugintest.Value(t, src)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("got %g, %v; want %g", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %g, want an error", got)
			}
			for _, want := range append(tc.wantErr, "prometheus "+prom.URL+": query `"+tc.query+"`") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestRealPrometheusBasicAuth runs against a Prometheus that demands basic auth
// (--web.config.file): the right password gets the value, a wrong one a 401 that names
// what to check and does not quote the password.
func TestRealPrometheusBasicAuth(t *testing.T) {
	const password = "c0rrect-h0rse"
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{Users: map[string]string{"scaler": password}})
	cases := []struct {
		name     string
		auth     *BasicAuth
		wantErr  string
		password string
	}{
		{name: "right password", auth: &BasicAuth{Username: "scaler", Password: configs.NewSecret(password)}},
		{name: "wrong password", auth: &BasicAuth{Username: "scaler", Password: configs.NewSecret("wr0ng-h0rse")}, wantErr: "401 (check bearer_token, basic_auth and headers)", password: "wr0ng-h0rse"},
		{name: "no credentials", wantErr: "401 (check bearer_token, basic_auth and headers)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plugintest.Value(t, newSource(t, &Config{Address: prom.URL, Query: "vector(5)", BasicAuth: tc.auth}))
			if tc.wantErr == "" {
				if err != nil || got != 5 {
					t.Fatalf("got %g, %v; want 5", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %g, %v; want an error containing %q", got, err, tc.wantErr)
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// TestCredentials checks that headers and credentials reach the server, and that a server
// echoing them back in an error does not put them into our error messages.
func TestCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Header.Get("X-Deny") != "":
			w.WriteHeader(http.StatusUnauthorized)
			return
		case r.Header.Get("X-Echo") != "":
			// A proxy or server quoting the request back in its error.
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"status":"error","errorType":"execution","error":"tenant not allowed: %s"}`, r.Header.Get("Authorization"))
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`)
	}))
	defer srv.Close()

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("scaler:pa55-word"))
	cases := []struct {
		name     string
		cfg      Config
		wantAuth string
		secret   string
	}{
		{name: "bearer", cfg: Config{BearerToken: configs.NewSecret("t0ken-xyz")}, wantAuth: "Bearer t0ken-xyz", secret: "t0ken-xyz"},
		{name: "basic", cfg: Config{BasicAuth: &BasicAuth{Username: "scaler", Password: configs.NewSecret("pa55-word")}}, wantAuth: basic, secret: "pa55-word"},
		{name: "header", cfg: Config{Headers: map[string]configs.Secret{"Authorization": configs.NewSecret("ApiKey k3y-abc")}}, wantAuth: "ApiKey k3y-abc", secret: "k3y-abc"},
		// Go sends the address's user info as basic auth: its base64 must not come back either.
		{name: "user info", cfg: Config{Address: strings.Replace(srv.URL, "http://", "http://scaler:pa55-word@", 1)}, wantAuth: basic, secret: "pa55-word"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Address == "" {
				cfg.Address = srv.URL
			}
			cfg.Query = "up"
			cfg.Headers = map[string]configs.Secret{"X-Scope-OrgID": configs.NewSecret("team-a")}
			for k, v := range tc.cfg.Headers {
				cfg.Headers[k] = v
			}
			got, err := plugintest.Value(t, newSource(t, &cfg))
			if err != nil || got != 42 {
				t.Fatalf("got %g, %v; want 42", got, err)
			}
			mu.Lock()
			auth, org := seen.Get("Authorization"), seen.Get("X-Scope-OrgID")
			mu.Unlock()
			if auth != tc.wantAuth || org != "team-a" {
				t.Errorf("server saw Authorization %q, X-Scope-OrgID %q; want %q, team-a", auth, org, tc.wantAuth)
			}

			cfg.Headers["X-Echo"] = configs.NewSecret("yes")
			_, err = plugintest.Value(t, newSource(t, &cfg))
			if err == nil {
				t.Fatal("want an error from the failing server")
			}
			encoded := strings.TrimPrefix(tc.wantAuth, "Basic ") // what a basic-auth header carries
			if strings.Contains(err.Error(), tc.secret) || strings.Contains(err.Error(), encoded) || !strings.Contains(err.Error(), "tenant not allowed: ") {
				t.Errorf("error does not hide the credential: %v", err)
			}

			delete(cfg.Headers, "X-Echo")
			cfg.Headers["X-Deny"] = configs.NewSecret("yes")
			_, err = plugintest.Value(t, newSource(t, &cfg))
			if err == nil || !strings.Contains(err.Error(), "401 (check bearer_token, basic_auth and headers)") {
				t.Errorf("got %v, want a 401 error with a hint", err)
			}
		})
	}
}

// TestWarnings checks that warnings attached to a response leave the value alone and go
// to the debug log.
func TestWarnings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","warnings":["store eu-2 unreachable: partial response"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"11"]}]}}`)
	}))
	defer srv.Close()
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := New(&Config{Address: srv.URL, Query: "sum(up)"}, sources.Deps{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer sources.Close(src)
	if got, err := plugintest.Value(t, src); err != nil || got != 11 {
		t.Fatalf("got %g, %v; want 11", got, err)
	}
	if !strings.Contains(logged.String(), "level=DEBUG") || !strings.Contains(logged.String(), "store eu-2 unreachable") {
		t.Errorf("the warning is not in the debug log: %q", logged.String())
	}
}

// TestTLS checks that tls.ca_file is what makes a server with a private CA trusted.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		tls     configs.TLS
		wantErr string
	}{
		{name: "ca_file", tls: configs.TLS{CAFile: ca}},
		{name: "insecure_skip_verify", tls: configs.TLS{InsecureSkipVerify: true}},
		{name: "system roots only", wantErr: "certificate signed by unknown authority"},
		{name: "missing ca_file", tls: configs.TLS{CAFile: ca + ".missing"}, wantErr: "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plugintest.Value(t, newSource(t, &Config{Address: srv.URL, Query: "up", TLS: tc.tls}))
			switch {
			case tc.wantErr == "" && (err != nil || got != 3):
				t.Fatalf("got %g, %v; want 3", got, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %g, %v; want an error containing %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	port := testenv.FreePort(t)
	cases := []struct{ address, want string }{
		{fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("prometheus http://127.0.0.1:%d: query `up`", port)},
		{fmt.Sprintf("http://scaler:s3cr3t-pw@127.0.0.1:%d", port), fmt.Sprintf("prometheus http://scaler:xxxxx@127.0.0.1:%d", port)},
	}
	for _, tc := range cases {
		_, err := plugintest.Value(t, newSource(t, &Config{Address: tc.address, Query: "up"}))
		if err == nil {
			t.Fatalf("%s: want an error", tc.want)
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "connection refused") {
			t.Errorf("error %q; want it to contain %q and the cause", msg, tc.want)
		}
		if strings.Contains(msg, "s3cr3t-pw") {
			t.Errorf("error leaks the password: %q", msg)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{} }, []plugintest.ConfigCase{
		{Text: "query: up", Want: `missing required key "address"`},
		{Text: "address: http://p:9090", Want: `missing required key "query"`},
		{Text: "{address: 'p:9090', query: up}", Want: `is not an http(s) URL`},
		{Text: "{address: 'http://', query: up}", Want: `has no host`},
		{Text: "{address: 'http://p', query: ' '}", Want: `q.query: must not be empty`},
		{Text: "{address: 'http://p', query: up, bearer_token: t, basic_auth: {username: u}}", Want: `give bearer_token or basic_auth, not both`},
		{Text: "{address: 'http://p', query: up, bearer_token: t, headers: {authorization: x}}", Want: `sets Authorization`},
		{Text: "{address: 'http://p', query: up, empty_as: none}", Want: `"none" is not a number`},
		{Text: "{address: 'http://p', query: up, tls: {cert_file: c}}", Want: `cert_file and key_file go together`},
		{Text: "{address: 'http://p', query: up, headers: {'X Y': z}}", Want: `"X Y" is not a header name`},
		{Text: "{address: 'http://p', query: up, empty_as: -1}", Want: `empty_as: must not be negative`},
		{Text: "{address: 'http://p', query: up, querry: x}", Want: `unknown key "querry"`},
		{Text: "{address: 'http://p', query: up, empty_as: 0, headers: {X-A: b}, basic_auth: {username: u, password: p}}", Want: ``},
	})
}
