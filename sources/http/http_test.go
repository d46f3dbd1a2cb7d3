package httpsrc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

// hatchetStats is the shape of Hatchet's task-stats response (seed 000).
const hatchetStats = `{
  "send-email": {"queued": {"total": 150, "queues": {"send-email:default": 100, "send-email:priority": 50}, "oldest": "2024-01-15T10:30:00Z"},
                 "running": {"total": 25, "oldest": "2024-01-15T10:25:00Z", "concurrency": []}},
  "resize-image": {"queued": {"total": 7}, "running": {"total": 3}},
  "only-running": {"running": {"total": 4}}
}`

// decode decodes the kind's YAML as the loader does, defaults and checks included, and
// returns the configuration errors, one per line ("" when valid).
func decode(t *testing.T, text string, env map[string]string) (*Config, string) {
	t.Helper()
	cfg := &Config{Endpoint: Endpoint{Method: http.MethodGet}}
	if err := plugintest.Decode(t, text, cfg, env); err != nil {
		return cfg, err.Error()
	}
	return cfg, ""
}

func build(t *testing.T, text string, env map[string]string) sources.Source {
	t.Helper()
	cfg, errs := decode(t, text, env)
	if errs != "" {
		t.Fatalf("config errors:\n%s", errs)
	}
	src, err := New(cfg, sources.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src
}

// recorded is what the test server saw of the last request.
type recorded struct {
	method string
	path   string
	host   string
	header http.Header
	body   string
}

// recorder holds the last request; the handler runs on the server's goroutines.
type recorder struct {
	mu   sync.Mutex
	last recorded
}

func (r *recorder) get() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// server answers with status and body, recording each request.
func server(t *testing.T, status int, body string) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.last = recorded{method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: string(b)}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func TestValue(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		query string // YAML after url:
		env   map[string]string
		want  float64
		check func(t *testing.T, r recorded)
	}{
		{name: "number", body: `{"queues": {"default": {"waiting": 42}}}`, query: "value: queues.default.waiting", want: 42},
		{name: "float", body: `{"load": 0.75}`, query: "value: load", want: 0.75},
		{name: "numeric string", body: `{"depth": " 17 "}`, query: "value: depth", want: 17},
		{name: "array element", body: `{"queues": [{"n": 3}, {"n": 9}]}`, query: "value: queues.1.n", want: 9},
		{name: "sum over hatchet tasks", body: hatchetStats, query: `value: "@values.#.queued.total|@sum"`, want: 157},
		{name: "sum over running", body: hatchetStats, query: `value: "@values.#.running.total|@sum"`, want: 32},
		{name: "max", body: hatchetStats, query: `value: "@values.#.queued.total|@max"`, want: 150},
		{name: "min", body: hatchetStats, query: `value: "@values.#.running.total|@min"`, want: 3},
		{name: "sum of queues object", body: hatchetStats, query: `value: send-email.queued.queues|@sum`, want: 150},
		{name: "sum of nothing queued", body: `{}`, query: `value: "@values.#.queued.total|@sum"`, want: 0},
		{
			name: "GET sends accept and user agent", body: `{"n": 1}`, query: "value: n", want: 1,
			check: func(t *testing.T, r recorded) {
				if r.method != "GET" || r.header.Get("Accept") != "application/json" || r.header.Get("User-Agent") != "autoscalerd" {
					t.Errorf("method %s, headers %v", r.method, r.header)
				}
				if r.header.Get("Authorization") != "" {
					t.Errorf("unexpected Authorization header %q", r.header.Get("Authorization"))
				}
			},
		},
		{
			name: "POST with body", body: `{"n": 2}`, want: 2,
			query: "method: POST\nbody: '{\"queue\": \"default\"}'\nvalue: n",
			check: func(t *testing.T, r recorded) {
				if r.method != "POST" || r.body != `{"queue": "default"}` || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s %q with Content-Type %q", r.method, r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name: "headers from env, content type and host override", body: `{"n": 3}`, want: 3,
			env:   map[string]string{"API_KEY": "k-123"},
			query: "method: PUT\nbody: 'q=1'\nheaders:\n  X-Api-Key: ${API_KEY}\n  Content-Type: application/x-www-form-urlencoded\n  Host: jobs.internal\nvalue: n",
			check: func(t *testing.T, r recorded) {
				if r.header.Get("X-Api-Key") != "k-123" || r.header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.host != "jobs.internal" {
					t.Errorf("headers %v, host %q", r.header, r.host)
				}
			},
		},
		{
			name: "bearer token", body: `{"n": 4}`, want: 4,
			env:   map[string]string{"TOKEN": "tok-abc"},
			query: "bearer_token: ${TOKEN}\nvalue: n",
			check: func(t *testing.T, r recorded) {
				if got := r.header.Get("Authorization"); got != "Bearer tok-abc" {
					t.Errorf("Authorization = %q", got)
				}
			},
		},
		{
			name: "basic auth", body: `{"n": 5}`, want: 5,
			query: "basic_auth: {username: scaler, password: pw-1}\nvalue: n",
			check: func(t *testing.T, r recorded) {
				req := &http.Request{Header: r.header}
				u, p, ok := req.BasicAuth()
				if !ok || u != "scaler" || p != "pw-1" {
					t.Errorf("basic auth = %q %q %v", u, p, ok)
				}
			},
		},
		{
			name: "query string kept", body: `{"n": 6}`, want: 6,
			query: "value: n",
			check: func(t *testing.T, r recorded) {
				if r.path != "/stats?queue=default" {
					t.Errorf("path %q", r.path)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := server(t, 200, tt.body)
			src := build(t, "url: "+srv.URL+"/stats?queue=default\n"+tt.query, tt.env)
			got, err := plugintest.Value(t, src)
			if err != nil {
				t.Fatalf("Value: %v", err)
			}
			if got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, rec.get())
			}
		})
	}
}

func TestValueErrors(t *testing.T) {
	const secret = "s3cr3t-tok"
	env := map[string]string{"TOKEN": secret}
	tests := []struct {
		name     string
		status   int
		body     string
		query    string
		urlTail  string
		want     []string // substrings of the error
		redacted []string // must not appear
	}{
		{
			name: "server error quotes body", status: 503, body: "upstream down\n\nretry later", query: "value: n",
			want: []string{"http: GET http://", "/stats: 503 Service Unavailable: upstream down retry later"},
		},
		{
			name: "unauthorized says what to check, without the token", status: 401,
			body:  `{"error": "invalid token s3cr3t-tok"}`,
			query: "bearer_token: ${TOKEN}\nvalue: n",
			want:  []string{"401 Unauthorized", `invalid token <redacted>`, "check bearer_token, basic_auth or the headers"},
		},
		{
			name: "long body cut at 200 bytes", status: 500, body: strings.Repeat("x", 300), query: "value: n",
			want: []string{": " + strings.Repeat("x", 200) + "…"},
		},
		{
			name: "not JSON", status: 200, body: "<html>login</html>", query: "value: n",
			want: []string{"response (Content-Type application/json) is not valid JSON: <html>login</html>"},
		},
		{name: "empty body", status: 200, body: "", query: "value: n", want: []string{"is empty, not JSON"}},
		{
			name: "path not found lists top keys", status: 200, body: `{"a": 1, "b": 2, "c": {"d": 3}}`, query: "value: x.y",
			want: []string{`no value at path "x.y"; the response has keys a, b, c`},
		},
		{
			name: "path not found lists keys at deepest level", status: 200, body: `{"queues": {"default": {"waiting": 1}, "mail": {}}}`,
			query: "value: queues.defualt.waiting",
			want:  []string{`no value at path "queues.defualt.waiting"; "queues" has keys default, mail`},
		},
		{
			name: "path through a number", status: 200, body: `{"a": 5}`, query: "value: a.b",
			want: []string{`no value at path "a.b"; "a" is 5`},
		},
		{
			name: "empty object", status: 200, body: `{}`, query: "value: my-task.queued.total",
			want: []string{`no value at path "my-task.queued.total"; the response is an empty object`},
		},
		{
			name: "top-level array", status: 200, body: `[1,2]`, query: "value: x",
			want: []string{`the response is an array of 2 elements`},
		},
		{
			name: "boolean", status: 200, body: `{"ok": true}`, query: "value: ok",
			want: []string{`value at path "ok": true is not a number`},
		},
		{
			name: "text", status: 200, body: `{"n": "many"}`, query: "value: n",
			want: []string{`value at path "n": "many" is not a number`},
		},
		{
			name: "array hints at sum", status: 200, body: hatchetStats, query: `value: "@values.#.queued.total"`,
			want: []string{"an array of 2 elements is not a number; add |@sum, |@max or |@min"},
		},
		{
			name: "sum over non-numbers", status: 200, body: `{"a": [1, "x"]}`, query: `value: a|@sum`,
			want: []string{`"@sum: element 1 is \"x\", not a number" is not a number`},
		},
		{
			name: "max of nothing", status: 200, body: `{"a": []}`, query: `value: a|@max`,
			want: []string{`@max: no values to take the max of`},
		},
		{
			name: "credentials in URL are redacted", status: 404, body: "no such page", query: "value: n",
			urlTail:  "?page=2&api_key=" + secret + "&Token=" + secret,
			want:     []string{"/stats?page=2&api_key=<redacted>&Token=<redacted>: 404 Not Found"},
			redacted: []string{secret},
		},
		{
			name: "echoed header values are redacted", status: 400,
			body:  `{"error": "bad key s3cr3t-tok for X-Api-Key"}`,
			query: "headers: {X-Api-Key: \"${TOKEN}\"}\nvalue: n",
			want:  []string{"bad key <redacted> for X-Api-Key"},
		},
		{
			name: "short credential-like header values are not scrubbed", status: 501, body: "level 1 unsupported",
			query: "headers: {X-Auth-Level: '1'}\nvalue: n",
			want:  []string{"501 Not Implemented: level 1 unsupported"},
		},
		{
			name: "echoed basic auth password is redacted", status: 403, body: "user scaler password s3cr3t-tok refused",
			query: "basic_auth: {username: scaler, password: \"${TOKEN}\"}\nvalue: n",
			want:  []string{"403 Forbidden: user scaler password <redacted> refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, tt.status, tt.body)
			src := build(t, "url: "+srv.URL+"/stats"+tt.urlTail+"\n"+tt.query, env)
			_, err := plugintest.Value(t, src)
			plugintest.ErrorSays(t, err, tt.want, secret)
		})
	}
}

func TestUserinfoRedacted(t *testing.T) {
	srv, rec := server(t, 500, "boom")
	u := strings.Replace(srv.URL, "http://", "http://scaler:pa55word@", 1)
	src := build(t, "url: "+u+"/s\nvalue: n", nil)
	_, err := plugintest.Value(t, src)
	if err == nil || strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "scaler") || !strings.Contains(err.Error(), "http://<redacted>@127.0.0.1") {
		t.Fatalf("error = %v", err)
	}
	// Go turns URL user info into basic auth; the server still gets it.
	if _, p, ok := (&http.Request{Header: rec.get().header}).BasicAuth(); !ok || p != "pa55word" {
		t.Errorf("basic auth from user info not sent")
	}
}

func TestTransportErrorRedacted(t *testing.T) {
	port := freePort(t) // nothing listens there
	src := build(t, "url: http://u:pw-secret@127.0.0.1:"+port+"/s?token=tk-secret\nvalue: n", nil)
	_, err := plugintest.Value(t, src)
	if err == nil {
		t.Fatal("want a connection error")
	}
	msg := err.Error()
	if strings.Contains(msg, "pw-secret") || strings.Contains(msg, "tk-secret") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("error = %q", msg)
	}
}

func TestRedirects(t *testing.T) {
	other, otherRec := server(t, 200, `{"n": 2}`)
	same := http.NewServeMux()
	srv := httptest.NewServer(same)
	t.Cleanup(srv.Close)
	same.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", http.StatusFound) })
	same.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"n": 1}`) })
	same.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stats?token=tk-secret", http.StatusFound)
	})

	src := build(t, "url: "+srv.URL+"/old\nvalue: n\nheaders: {X-Api-Key: k3y-secret}", nil)
	if v, err := plugintest.Value(t, src); err != nil || v != 1 {
		t.Errorf("same-host redirect: %v, %v", v, err)
	}
	src = build(t, "url: "+srv.URL+"/away\nvalue: n\nheaders: {X-Api-Key: k3y-secret}", nil)
	_, err := plugintest.Value(t, src)
	if err == nil || !strings.Contains(err.Error(), "redirected to another host, "+other.URL+"/stats?token=<redacted>; set url to the address that answers") {
		t.Fatalf("error = %v", err)
	}
	if got := otherRec.get(); got.header != nil {
		t.Errorf("the other host got a request with headers %v", got.header)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func TestBodyCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat(" ", 1<<20))
		io.WriteString(w, `{"n": 1`)
		for range 11 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `}`)
	}))
	t.Cleanup(srv.Close)
	src := build(t, "url: "+srv.URL+"\nvalue: n", nil)
	_, err := plugintest.Value(t, src)
	if err == nil || !strings.Contains(err.Error(), "response is larger than 10 MiB") {
		t.Fatalf("error = %v", err)
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	src := build(t, "url: "+srv.URL+"\nvalue: n", nil)
	start := time.Now()
	_, err := sources.Read(context.Background(), src, 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("error = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestConnectionReuse checks that evaluations share one keep-alive connection and that
// Close drops it.
func TestConnectionReuse(t *testing.T) {
	var opened, closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"n": 1}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg, errs := decode(t, "url: "+srv.URL+"\nvalue: n", nil)
	if errs != "" {
		t.Fatal(errs)
	}
	src, _ := New(cfg, sources.Deps{})
	if opened.Load() != 0 {
		t.Fatalf("New opened a connection; build must do no I/O")
	}
	for range 5 {
		if _, err := plugintest.Value(t, src); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("5 evaluations opened %d connections, want 1", n)
	}
	if err := sources.Close(src); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := closed.Load(); n != 1 {
		t.Errorf("after Close, %d connections closed, want 1", n)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"n": 8}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake is expected
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	der := srv.Certificate().Raw
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     string
		wantErr string
	}{
		{name: "system roots reject a private CA", tls: "", wantErr: "certificate"},
		{name: "ca_file", tls: "tls: {ca_file: " + ca + "}"},
		{name: "insecure_skip_verify", tls: "tls: {insecure_skip_verify: true}"},
		{name: "missing ca_file fails at the request, not at build", tls: "tls: {ca_file: " + dir + "/nope.pem}", wantErr: "tls ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := build(t, "url: "+srv.URL+"\nvalue: n\n"+tt.tls, nil)
			got, err := plugintest.Value(t, src)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Value: %v", err)
			case tt.wantErr == "" && got != 8:
				t.Fatalf("Value = %v", got)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestClientCertificate checks cert_file/key_file against a server that requires a
// client certificate.
func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "autoscalerd"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "ca.pem")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	clientCert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"n": 11}`)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	write(caFile, "CERTIFICATE", srv.Certificate().Raw)

	src := build(t, "url: "+srv.URL+"\nvalue: n\ntls: {ca_file: "+caFile+", cert_file: "+certFile+", key_file: "+keyFile+"}", nil)
	if v, err := plugintest.Value(t, src); err != nil || v != 11 {
		t.Fatalf("with a client certificate: %v, %v", v, err)
	}
	src = build(t, "url: "+srv.URL+"\nvalue: n\ntls: {ca_file: "+caFile+"}", nil)
	if _, err := plugintest.Value(t, src); err == nil {
		t.Fatal("the server requires a client certificate, but the request without one succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "missing url and value", yaml: "method: GET", want: []string{
			`test.yaml:1:1: q: missing required key "url"`, `test.yaml:1:1: q: missing required key "value"`}},
		{name: "lower-case method is fine", yaml: "url: http://x\nvalue: n\nmethod: post"},
		{name: "bad method", yaml: "url: http://x\nvalue: n\nmethod: DELETE", want: []string{
			`test.yaml:3:9: q.method: "DELETE" is not a method a query can use (use GET, POST, PUT, PATCH)`}},
		{name: "not http", yaml: "url: ftp://x/y\nvalue: n", want: []string{
			`test.yaml:1:6: q.url: ftp://x/y: want an http:// or https:// URL`}},
		{name: "no host", yaml: "url: http:///stats\nvalue: n", want: []string{`q.url: http:///stats: no host`}},
		{name: "bad URL does not echo credentials", yaml: "url: \"http://u:pw-secret@[::1\"\nvalue: n", want: []string{
			`q.url: not a valid URL: missing ']' in host`}},
		{name: "scheme error redacts", yaml: "url: \"gopher://u:pw-secret@h/?token=tk-secret\"\nvalue: n", want: []string{
			`q.url: gopher://<redacted>@h/?token=<redacted>: want an http:// or https:// URL`}},
		{name: "bearer and basic", yaml: "url: http://x\nvalue: n\nbearer_token: t\nbasic_auth: {username: u, password: p}", want: []string{
			`q.bearer_token: give bearer_token or basic_auth, not both`}},
		{name: "authorization header twice", yaml: "url: http://x\nvalue: n\nbearer_token: t\nheaders: {authorization: x}", want: []string{
			`q.headers: sets Authorization as well as bearer_token or basic_auth; keep one`}},
		{name: "bad header name", yaml: "url: http://x\nvalue: n\nheaders: {'X Key': x}", want: []string{
			`q.headers: "X Key" is not a header name`}},
		{name: "empty value", yaml: "url: http://x\nvalue: ''", want: []string{`q.value: must not be empty`}},
		{name: "basic auth without username", yaml: "url: http://x\nvalue: n\nbasic_auth: {password: p}", want: []string{
			`q.basic_auth: missing required key "username"`}},
		{name: "unknown key", yaml: "url: http://x\nvalue: n\nbearer: t", want: []string{
			`unknown key "bearer"`}},
		{name: "cert without key", yaml: "url: http://x\nvalue: n\ntls: {cert_file: c.pem}", want: []string{
			`q.tls: cert_file and key_file go together`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, all := decode(t, tt.yaml, nil)
			if len(tt.want) == 0 {
				if all != "" {
					t.Fatalf("unexpected errors:\n%s", all)
				}
				if cfg.Method != strings.ToUpper(cfg.Method) {
					t.Errorf("method %q was not upper-cased", cfg.Method)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors:\n%s\ndo not contain %q", all, w)
				}
			}
			if strings.Contains(all, "secret") {
				t.Errorf("errors leak a credential:\n%s", all)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://host/p?a=1&b=2", "https://host/p?a=1&b=2"},
		{"https://u:p@host/p", "https://<redacted>@host/p"},
		{"https://tokenonly@host/", "https://<redacted>@host/"},
		{"https://h/?access_token=x&page=2&apiKey=y&SECRET=z&password=w&sig=v", "https://h/?access_token=<redacted>&page=2&apiKey=<redacted>&SECRET=<redacted>&password=<redacted>&sig=<redacted>"},
		{"https://h/?api%5Fkey=x", "https://h/?api%5Fkey=<redacted>"},
		{"https://h/?flag&token=", "https://h/?flag&token=<redacted>"},
		{"http://[::1", "<unparseable URL>"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// echoHeaders answers 401 with the request's headers in the body, as some servers' error
// pages do: as text lines, as JSON, as JSON with "\/" for "/", or URL-encoded (?form=).
func echoHeaders(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		h := r.Header.Clone()
		for _, name := range []string{"Accept", "Accept-Encoding", "User-Agent"} {
			h.Del(name) // keep the body short: error messages quote only its start
		}
		var lines strings.Builder
		for name, vals := range h {
			fmt.Fprintf(&lines, "%s: %s\n", name, strings.Join(vals, ", "))
		}
		js, _ := json.Marshal(h)
		switch r.URL.Query().Get("form") {
		case "json":
			w.Write(js)
		case "json-slash":
			io.WriteString(w, strings.ReplaceAll(string(js), "/", `\/`))
		case "query":
			io.WriteString(w, url.QueryEscape(lines.String()))
		default:
			io.WriteString(w, lines.String())
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestEchoedCredentialsRedacted: a server that echoes the request's headers puts back the
// credentials in the forms they travel in (base64 of user:password, "Bearer x", header
// values named like nothing secret), in several encodings; none may reach the error.
func TestEchoedCredentialsRedacted(t *testing.T) {
	srv := echoHeaders(t)
	basic := func(user, pass string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	const pass = "pa55/w+rd?" // base64 of scaler:pa55/w+rd? holds "/" and "+"
	for _, tt := range []struct {
		name, userinfo, config string
		never                  []string
	}{
		{"basic_auth", "", "basic_auth: { username: scaler, password: \"" + pass + "\" }", []string{pass, basic("scaler", pass)}},
		{"URL user info", "scaler:" + url.QueryEscape(pass) + "@", "", []string{pass, basic("scaler", pass)}},
		{"token as URL user", "tok-6f1e2d@", "", []string{"tok-6f1e2d", basic("tok-6f1e2d", "")}},
		{"bearer_token", "", "bearer_token: tok-9a8b7c", []string{"tok-9a8b7c"}},
		{"plain-named header", "", "headers: { X-Tenant: tenant/c4d5+e6 }", []string{"tenant/c4d5+e6"}},
	} {
		for _, form := range []string{"lines", "json", "json-slash", "query"} {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				u := strings.Replace(srv.URL, "http://", "http://"+tt.userinfo, 1) + "/s?form=" + form
				src := build(t, "url: "+u+"\nvalue: n\n"+tt.config, nil)
				_, err := plugintest.Value(t, src)
				var never []string
				for _, n := range tt.never {
					never = append(never, n, url.QueryEscape(n), strings.ReplaceAll(n, "/", `\/`))
				}
				plugintest.ErrorSays(t, err, []string{"401 Unauthorized", "<redacted>"}, never...)
			})
		}
	}
	// Headers that only describe the request stay readable.
	src := build(t, "url: "+srv.URL+"/s\nvalue: n\nheaders: { Accept-Language: en-GB, X-Api-Key: k3y-secret }", nil)
	_, err := plugintest.Value(t, src)
	plugintest.ErrorSays(t, err, []string{"Accept-Language: en-GB"}, "k3y-secret")
}

// TestHugeAndTricklingBodies: a 1 GB response is cut at MaxBody (the client stops reading,
// so the server cannot push the rest into the daemon's memory), and a response that
// trickles a byte at a time is abandoned at the query's timeout.
func TestHugeAndTricklingBodies(t *testing.T) {
	var written atomic.Int64
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		chunk := make([]byte, 64<<10)
		for written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(huge.Close)
	src := build(t, "url: "+huge.URL+"\nvalue: n", nil)
	_, err := plugintest.Value(t, src)
	plugintest.ErrorSays(t, err, []string{"response is larger than 10 MiB"})
	sources.Close(src)
	huge.CloseClientConnections()
	// What was sent beyond the cap sat in socket buffers, not in a 1 GB read.
	if w := written.Load(); w > 64<<20 {
		t.Errorf("the server wrote %d MiB before the client stopped reading", w>>20)
	}

	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"n": `)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
				if _, err := io.WriteString(w, " "); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(trickle.Close)
	src = build(t, "url: "+trickle.URL+"\nvalue: n", nil)
	_, err = sources.Read(context.Background(), src, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("trickling body: error = %v, want the query timeout", err)
	}
}
