package temporal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadmeShowsSample(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) {
	var q struct {
		Queries configs.Queries `yaml:"queries"`
	}
	if err := plugintest.Decode(t, sample, &q, nil); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	cfg := q.Queries[0].Config.(*Config)
	if cfg.Namespace != "default" || cfg.Measure != "count" || strings.Join(cfg.Types, ",") != "workflow,activity" {
		t.Fatalf("sample.conf decoded to %+v", cfg)
	}
}

func newConfig() *Config {
	return &Config{Namespace: "default", Types: []string{"workflow", "activity"}, Measure: sources.MeasureCount}
}

func TestConfig(t *testing.T) {
	plugintest.CheckConfigs(t, newConfig, []plugintest.ConfigCase{
		{Text: "address: temporal:7233\ntask_queue: orders"},
		{Text: "address: ns.abc.tmprl.cloud:7233\nnamespace: ns.abc\ntask_queue: q\napi_key: secret-key\nmeasure: backlog_age\ntypes: [activity]"},
		{Text: "address: h:7233\ntask_queue: q\napi_key: k\ntls: {disabled: true}"},
		{Text: "address: h:7233\ntask_queue: q\ntls: {disabled: true, ca_file: ca.pem}", Want: "would be ignored"},
		{Text: "address: h:7233\ntask_queue: q\ntls: {cert_file: c.pem}", Want: "cert_file and key_file go together"},
		{Text: "address: http://h:7233\ntask_queue: q", Want: "is not host:port"},
		{Text: "address: temporal\ntask_queue: q", Want: "is not host:port"},
		{Text: "address: h:7233\ntask_queue: q\ntypes: [workflow, activities]", Want: `"activities" is not a task queue type`},
		{Text: "address: h:7233\ntask_queue: q\ntypes: [workflow, workflow]", Want: "listed twice"},
		{Text: "address: h:7233\ntask_queue: q\ntypes: []", Want: "at least one"},
		{Text: "address: h:7233\ntask_queue: q\nmeasure: oldest_age"},
		{Text: "address: h:7233\ntask_queue: q\nmeasure: count"},
		{Text: "address: h:7233\ntask_queue: q\nmeasure: backlog"},
		{Text: "address: h:7233\ntask_queue: q\nmeasure: depth", Want: `"depth" is not a measure (use count or oldest_age; backlog and backlog_age are older names for them)`},
		{Text: "address: h:7233", Want: `missing required key "task_queue"`},
	}, "secret-key")
}

func TestTLSChoice(t *testing.T) {
	for _, tc := range []struct {
		name        string
		apiKey      string
		tls         *TLS
		wantTLS     bool
		wantInsecur bool
	}{
		{"plain", "", nil, false, false},
		{"api key turns tls on", "k", nil, true, false},
		{"api key, tls disabled", "k", &TLS{Disabled: true}, false, false},
		{"tls given", "", &TLS{TLS: configs.TLS{InsecureSkipVerify: true}}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{cfg: Config{Address: "h:7233", APIKey: configs.NewSecret(tc.apiKey), TLS: tc.tls}}
			opts, err := c.options()
			if err != nil {
				t.Fatal(err)
			}
			gotTLS := opts.ConnectionOptions.TLS != nil
			if gotTLS != tc.wantTLS || opts.ConnectionOptions.TLSDisabled == tc.wantTLS {
				t.Fatalf("TLS = %v (disabled %v), want %v", gotTLS, opts.ConnectionOptions.TLSDisabled, tc.wantTLS)
			}
			if gotTLS && opts.ConnectionOptions.TLS.InsecureSkipVerify != tc.wantInsecur {
				t.Fatal("insecure_skip_verify not carried over")
			}
			if (opts.Credentials != nil) != (tc.apiKey != "") {
				t.Fatal("api key credentials not set")
			}
		})
	}
}

const (
	workflowQueue     = "orders"       // no worker: workflow tasks pile up
	orchestratorQueue = "orchestrator" // a worker runs fanOut here
	activityQueue     = "payments"     // fanOut schedules activities here; no worker
)

// fanOut schedules n activities on a queue nobody polls and waits for them forever.
func fanOut(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: activityQueue, StartToCloseTimeout: time.Hour})
	var pending []workflow.Future
	for i := range n {
		pending = append(pending, workflow.ExecuteActivity(ctx, "Charge", i))
	}
	for _, f := range pending {
		_ = f.Get(ctx, nil)
	}
	return nil
}

// TestServer runs against a real dev server: 4 workflows started on a queue without a
// worker (workflow backlog), and one workflow that schedules 3 activities on a queue
// without an activity worker (activity backlog).
func TestServer(t *testing.T) {
	srv := testenv.StartTemporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()

	for i := range 4 {
		opts := client.StartWorkflowOptions{ID: fmt.Sprintf("order-%d", i), TaskQueue: workflowQueue}
		if _, err := c.ExecuteWorkflow(ctx, opts, "ProcessOrder", i); err != nil {
			t.Fatalf("start workflow: %v", err)
		}
	}
	w := worker.New(c, orchestratorQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fanOut, workflow.RegisterOptions{Name: "FanOut"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fan-out", TaskQueue: orchestratorQueue}, "FanOut", 3); err != nil {
		t.Fatalf("start fan-out: %v", err)
	}

	set := shared.NewSet()
	for _, tc := range []struct {
		name  string
		queue string
		types []string
		want  float64
	}{
		{"workflow backlog", workflowQueue, []string{"workflow"}, 4},
		{"workflow and activity on a workflow queue", workflowQueue, []string{"workflow", "activity"}, 4},
		{"activity backlog", activityQueue, []string{"activity"}, 3},
		{"default types on an activity queue", activityQueue, []string{"workflow", "activity"}, 3},
		{"workflow types only on an activity queue", activityQueue, []string{"workflow"}, 0},
		{"unused queue", "nobody-uses-this", []string{"workflow", "activity", "nexus"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig()
			cfg.Address, cfg.TaskQueue, cfg.Types = srv.Address, tc.queue, tc.types
			src := build(t, set, cfg)
			// Backlog counts are approximate and refreshed by the matching service
			// asynchronously: poll until they reach what was set up.
			eventually(t, src, func(v float64) bool { return v == tc.want }, fmt.Sprintf("== %v", tc.want))
		})
	}

	t.Run("oldest age", func(t *testing.T) {
		// backlog_age is the older name of oldest_age: both must read the age.
		for _, measure := range []string{sources.MeasureOldestAge, "backlog_age"} {
			for _, queue := range []string{workflowQueue, activityQueue} {
				cfg := newConfig()
				cfg.Address, cfg.TaskQueue, cfg.Measure = srv.Address, queue, measure
				src := build(t, set, cfg)
				v := eventually(t, src, func(v float64) bool { return v >= 1 }, ">= 1s")
				if v > 120 {
					t.Fatalf("%s, %s: backlog age %vs is older than the test", measure, queue, v)
				}
			}
		}
		// backlog is the older name of count.
		cfg := newConfig()
		cfg.Address, cfg.TaskQueue, cfg.Types, cfg.Measure = srv.Address, workflowQueue, []string{"workflow"}, "backlog"
		eventually(t, build(t, set, cfg), func(v float64) bool { return v == 4 }, "== 4")
	})

	t.Run("one connection per server", func(t *testing.T) {
		set := shared.NewSet()
		a, b := newConfig(), newConfig()
		a.Address, a.TaskQueue = srv.Address, workflowQueue
		b.Address, b.TaskQueue, b.Namespace = srv.Address, activityQueue, "other" // namespace is per request
		srcA, srcB := build(t, set, a), build(t, set, b)
		if _, err := sources.Read(ctx, srcA, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := set.Len(); n != 1 {
			t.Fatalf("set.Len() = %d, want 1", n)
		}
		_ = sources.Close(srcA)
		_ = sources.Close(srcB)
		if n := set.Len(); n != 0 {
			t.Fatalf("set.Len() = %d after closing both, want 0", n)
		}
	})

	t.Run("tls", func(t *testing.T) {
		// The dev server speaks plain gRPC; a TLS-terminating proxy in front of it stands
		// in for Temporal Cloud's TLS endpoint.
		pki := testenv.NewPKI(t)
		proxy := tlsProxy(t, pki, srv.Address)
		for _, tc := range []struct {
			name    string
			address string
			apiKey  string
			tls     *TLS
			wantErr string
		}{
			{"api key over tls with our ca", proxy, "secret-api-key", &TLS{TLS: configs.TLS{CAFile: pki.CAFile}}, ""},
			{"mtls client certificate", proxy, "", &TLS{TLS: configs.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}}, ""},
			{"api key turns tls on: system roots refuse our ca", proxy, "secret-api-key", nil, "certificate signed by unknown authority"},
			{"tls disabled sends plain text", srv.Address, "secret-api-key", &TLS{Disabled: true}, ""},
			{"api key without tls config against plain text", srv.Address, "secret-api-key", nil, "temporal: connect to"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := newConfig()
				cfg.Address, cfg.TaskQueue, cfg.Types = tc.address, workflowQueue, []string{"workflow"}
				cfg.APIKey, cfg.TLS = configs.NewSecret(tc.apiKey), tc.tls
				v, err := sources.Read(context.Background(), build(t, shared.NewSet(), cfg), 5*time.Second)
				if tc.wantErr == "" {
					if err != nil || v != 4 {
						t.Fatalf("value = %v, %v; want 4", v, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v, %v", tc.wantErr, v, err)
				}
				if strings.Contains(err.Error(), "secret-api-key") {
					t.Fatalf("error leaks the API key: %v", err)
				}
			})
		}
	})

	t.Run("unknown namespace", func(t *testing.T) {
		cfg := newConfig()
		cfg.Address, cfg.TaskQueue, cfg.Namespace = srv.Address, workflowQueue, "nope"
		_, err := sources.Read(context.Background(), build(t, set, cfg), 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), `temporal: namespace "nope" not found on `+srv.Address) {
			t.Fatalf("want a namespace-not-found error, got %v", err)
		}
	})
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct{ name, address string }{
		{"refused", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))},
		{"silent", silentServer(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig()
			cfg.Address, cfg.TaskQueue = tc.address, "q"
			cfg.APIKey, cfg.TLS = configs.NewSecret("secret-api-key"), &TLS{Disabled: true}
			src := build(t, shared.NewSet(), cfg)
			for range 2 { // a failed dial is retried on the next evaluation, not remembered
				start := time.Now()
				_, err := sources.Read(context.Background(), src, 2*time.Second)
				took := time.Since(start)
				t.Logf("after %s: %v", took.Round(time.Millisecond), err)
				if err == nil {
					t.Fatal("want an error")
				}
				if !strings.Contains(err.Error(), "temporal: connect to "+cfg.Address) {
					t.Fatalf("error does not name the server: %v", err)
				}
				if strings.Contains(err.Error(), "secret-api-key") {
					t.Fatalf("error leaks the API key: %v", err)
				}
				if took > 3*time.Second {
					t.Fatalf("took %s, past the 2s query timeout", took)
				}
			}
		})
	}
}

// TestWaitForSharedDial: a query waiting for another query's dial on the shared
// connection gives up at its own timeout, not the other's.
func TestWaitForSharedDial(t *testing.T) {
	set := shared.NewSet()
	cfg := newConfig()
	cfg.Address, cfg.TaskQueue = silentServer(t), "q"
	slow, quick := build(t, set, cfg), build(t, set, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = sources.Read(context.Background(), slow, 3*time.Second)
	}()
	time.Sleep(100 * time.Millisecond) // let the slow query take the dial
	start := time.Now()
	_, err := sources.Read(context.Background(), quick, 300*time.Millisecond)
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("waiting query returned after %s with %v; want its own 300ms timeout", took, err)
	}
	<-done
}

// tlsProxy terminates TLS (HTTP/2 by ALPN, as gRPC wants; a client certificate is
// checked if sent) and forwards the bytes to a plain-text backend.
func tlsProxy(t *testing.T, pki *testenv.PKI, backend string) string {
	t.Helper()
	cfg := pki.ServerTLS(t, false)
	cfg.NextProtos = []string{"h2"}
	pool := x509.NewCertPool()
	pool.AddCert(pki.CA)
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Forward(t, l, backend)
	return l.Addr().String()
}

// silentServer accepts TCP connections and never answers: dials must still end at the
// query's timeout.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return l.Addr().String()
}

func build(t *testing.T, set *shared.Set, cfg *Config) sources.Source {
	t.Helper()
	src, err := New(cfg, sources.Deps{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src
}

func eventually(t *testing.T, src sources.Source, ok func(float64) bool, want string) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := sources.Read(context.Background(), src, 5*time.Second)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("value = %v, %v; want %s", v, err, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
