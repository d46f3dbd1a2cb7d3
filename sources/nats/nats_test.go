package nats

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv/natstest"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadmeShowsSample(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) {
	var q struct {
		Queries configs.Queries `yaml:"queries"`
	}
	if err := plugintest.Decode(t, sample, &q, map[string]string{"NATS_PASSWORD": "pw"}); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	if len(q.Queries) != 1 || q.Queries[0].Kind != "nats" {
		t.Fatalf("sample.conf: want one nats query, got %+v", q.Queries)
	}
	cfg := q.Queries[0].Config.(*Config)
	if !cfg.IncludeAckPending || cfg.Stream != "ORDERS" || cfg.Password.Value() != "pw" {
		t.Fatalf("sample.conf decoded to %+v", cfg)
	}
}

func TestConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{IncludeAckPending: true, Measure: sources.MeasureCount} }, []plugintest.ConfigCase{
		{Text: "url: nats://127.0.0.1:4222\nstream: S\nconsumer: C"},
		{Text: "url: 'nats://a:4222, tls://b:4222,c:4222'\nstream: S\nconsumer: C"},
		{Text: "url: nats://a\nstream: S", Want: `missing required key "consumer"`},
		{Text: "url: http://a:4222\nstream: S\nconsumer: C", Want: `scheme "http" is not one of nats, tls, ws, wss`},
		{Text: "url: http://u:hunter2@a:4222\nstream: S\nconsumer: C", Want: `http://u:xxxxx@a:4222`},
		{Text: "url: ' , '\nstream: S\nconsumer: C", Want: "must name at least one server"},
		{Text: "url: nats://a\nstream: a.b\nconsumer: C", Want: `"a.b" is not a JetStream name`},
		{Text: "url: nats://a\nstream: S\nconsumer: '>'", Want: `">" is not a JetStream name`},
		{Text: "url: nats://a\nstream: S\nconsumer: C\ntoken: t\ncreds: /x.creds", Want: "alternatives"},
		{Text: "url: nats://a\nstream: S\nconsumer: C\nuser: u", Want: "user and password go together"},
		{Text: "url: nats://a\nstream: S\nconsumer: C\ntls: {cert_file: c.pem}", Want: "cert_file and key_file go together"},
		{Text: "url: nats://a\nstream: S\nconsumer: C\nsubject: x", Want: `unknown key "subject"`},
		{Text: "url: nats://a\nstream: S\nconsumer: C\nmeasure: oldest_age"},
		{Text: "url: nats://a\nstream: S\nconsumer: C\nmeasure: age", Want: `test.yaml:4:10: q.measure: "age" is not a measure (use count or oldest_age)`},
	}, "hunter2")

	cfg := &Config{IncludeAckPending: true, Measure: sources.MeasureCount}
	if err := plugintest.Decode(t, "url: nats://a\nstream: S\nconsumer: C", cfg, nil); err != nil || !cfg.IncludeAckPending {
		t.Fatalf("include_ack_pending should default to true: %+v, %v", cfg, err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                        "nats://127.0.0.1:4222",
		"nats://u:secret@a:4222,nats://mytoken@b:4222": "nats://u:xxxxx@a:4222,nats://xxxxx@b:4222",
		"u:p@w@host:4222":                              "u:xxxxx@host:4222",
		"tls://tok@h":                                  "tls://xxxxx@h",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// backlog puts the consumer into a known state: of total messages, acked are delivered and
// acknowledged, inFlight delivered and not acknowledged, and the rest never delivered.
func backlog(t *testing.T, url string, replicas, total, acked, inFlight int, connOpts ...nats.Option) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(url, connOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: replicas}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	cons, err := js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{
		Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, Replicas: replicas,
		AckWait: time.Hour, // in-flight messages must stay in flight for the whole test
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	for i := range total {
		if _, err := js.Publish(ctx, "orders.new", fmt.Appendf(nil, "order %d", i)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	fetch := func(n int, ack bool) {
		if n == 0 {
			return
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if ack {
				// DoubleAck waits for the server, so the counts are settled when we read them.
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatalf("ack: %v", err)
				}
			}
		}
		if got != n {
			t.Fatalf("fetched %d messages, want %d (%v)", got, n, batch.Error())
		}
	}
	fetch(acked, true)
	fetch(inFlight, false)
	// The server updates a consumer's counts shortly after a publish, not with it: wait
	// until they settle so the test reads what it set up.
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		if info.NumPending == uint64(total-acked-inFlight) && info.NumAckPending == inFlight {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("consumer counts did not settle: pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newSource(t *testing.T, set *shared.Set, cfg Config) sources.Source {
	t.Helper()
	src, err := New(&cfg, sources.Deps{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src
}

func read(t *testing.T, src sources.Source) (float64, error) {
	t.Helper()
	return sources.Read(context.Background(), src, 5*time.Second)
}

func TestValue(t *testing.T) {
	srv := natstest.Start(t, nil)
	backlog(t, srv.ClientURL(), 1, 10, 3, 2)

	set := shared.NewSet()
	for _, tc := range []struct {
		name       string
		ackPending bool
		want       float64
	}{
		{"undelivered and in flight", true, 7},
		{"undelivered only", false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, set, Config{URL: srv.ClientURL(), Stream: "ORDERS", Consumer: "workers", IncludeAckPending: tc.ackPending})
			got, err := read(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("value = %v, want %v", got, tc.want)
			}
		})
	}
	if n := set.Len(); n != 0 {
		t.Fatalf("%d shared connections left open after every source closed", n)
	}
}

func TestSharedConnection(t *testing.T) {
	srv := natstest.Start(t, nil)
	backlog(t, srv.ClientURL(), 1, 4, 0, 0)
	set := shared.NewSet()
	cfg := Config{URL: srv.ClientURL(), Stream: "ORDERS", Consumer: "workers", IncludeAckPending: true}
	a, _ := New(&cfg, sources.Deps{Shared: set})
	b, _ := New(&cfg, sources.Deps{Shared: set})
	other := cfg
	other.Token = configs.NewSecret("x") // another identity must get its own connection
	c, _ := New(&other, sources.Deps{Shared: set})
	for _, src := range []sources.Source{a, b} {
		if v, err := read(t, src); err != nil || v != 4 {
			t.Fatalf("value = %v, %v; want 4", v, err)
		}
	}
	if got := srv.NumClients(); got != 1 {
		t.Fatalf("server has %d clients, want 1 shared connection", got)
	}
	if set.Len() != 2 {
		t.Fatalf("set.Len() = %d, want 2 (one per identity)", set.Len())
	}
	for _, src := range []sources.Source{a, b, c} {
		if err := sources.Close(src); err != nil {
			t.Fatal(err)
		}
	}
	if set.Len() != 0 {
		t.Fatalf("set.Len() = %d after closing every source", set.Len())
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.NumClients() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still has %d clients after Close", srv.NumClients())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	const token, password = "s3cret-token", "s3cret-pass"
	tokenSrv := natstest.Start(t, func(o *server.Options) { o.Authorization = token })
	userSrv := natstest.Start(t, func(o *server.Options) { o.Username, o.Password = "scaler", password })
	backlog(t, tokenSrv.ClientURL(), 1, 3, 0, 0, nats.Token(token))
	backlog(t, userSrv.ClientURL(), 1, 3, 0, 0, nats.UserInfo("scaler", password))

	hostport := func(s *server.Server) string { return strings.TrimPrefix(s.ClientURL(), "nats://") }
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"token", Config{URL: tokenSrv.ClientURL(), Token: configs.NewSecret(token)}, ""},
		{"wrong token", Config{URL: tokenSrv.ClientURL(), Token: configs.NewSecret("wrong-" + token)}, "Authorization Violation"},
		{"no token", Config{URL: tokenSrv.ClientURL()}, "Authorization Violation"},
		{"token in url", Config{URL: "nats://" + token + "@" + hostport(tokenSrv)}, ""},
		{"wrong token in url", Config{URL: "nats://wrong-" + token + "@" + hostport(tokenSrv)}, "nats://xxxxx@"},
		{"user and password", Config{URL: userSrv.ClientURL(), User: "scaler", Password: configs.NewSecret(password)}, ""},
		{"wrong password", Config{URL: userSrv.ClientURL(), User: "scaler", Password: configs.NewSecret("wrong-" + password)}, "Authorization Violation"},
		{"wrong password in url", Config{URL: "nats://scaler:wrong-" + password + "@" + hostport(userSrv)}, "nats://scaler:xxxxx@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Stream, tc.cfg.Consumer, tc.cfg.IncludeAckPending = "ORDERS", "workers", true
			v, err := read(t, newSource(t, shared.NewSet(), tc.cfg))
			if tc.wantErr == "" {
				if err != nil || v != 3 {
					t.Fatalf("value = %v, %v; want 3", v, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got value %v", v)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), password) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	srv := natstest.Start(t, nil)
	backlog(t, srv.ClientURL(), 1, 1, 0, 0)
	noJS := natstest.Start(t, func(o *server.Options) { o.JetStream = false })
	dead := fmt.Sprintf("nats://u:hunter2@127.0.0.1:%d", testenv.FreePort(t))

	for _, tc := range []struct {
		name             string
		url, stream, con string
		want             string
		is               error
	}{
		{"unknown consumer", srv.ClientURL(), "ORDERS", "nobody", `nats: consumer "ORDERS/nobody": consumer not found`, jetstream.ErrConsumerNotFound},
		{"unknown stream", srv.ClientURL(), "INVOICES", "workers", `nats: consumer "INVOICES/workers": stream "INVOICES" not found`, jetstream.ErrStreamNotFound},
		{"no jetstream", noJS.ClientURL(), "ORDERS", "workers", `JetStream is not enabled on ` + noJS.ClientURL(), nil},
		{"unreachable", dead, "ORDERS", "workers", "nats: connect to nats://u:xxxxx@127.0.0.1:", nats.ErrNoServers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, shared.NewSet(), Config{URL: tc.url, Stream: tc.stream, Consumer: tc.con, IncludeAckPending: true})
			start := time.Now()
			_, err := read(t, src)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Fatalf("took %s, more than the query timeout", d)
			}
		})
	}
}

// TestCluster reads one R3 consumer through every node of a three-node cluster: the value
// must not depend on the node, and a query must survive the loss of the node it uses.
func TestCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	backlog(t, servers[0].ClientURL(), 3, 20, 6, 4)

	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	cases := append([]string{}, urls...)
	cases = append(cases, strings.Join(urls, ","))
	for _, url := range cases {
		for _, tc := range []struct {
			ackPending bool
			want       float64
		}{{true, 14}, {false, 10}} {
			t.Run(fmt.Sprintf("%s/ack_pending=%v", url, tc.ackPending), func(t *testing.T) {
				src := newSource(t, shared.NewSet(), Config{URL: url, Stream: "ORDERS", Consumer: "workers", IncludeAckPending: tc.ackPending})
				// A follower's view is only used for routing; the answer comes from the
				// consumer leader, but give replication a moment after the acks.
				deadline := time.Now().Add(10 * time.Second)
				for {
					v, err := read(t, src)
					if err == nil && v == tc.want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("value = %v, %v; want %v", v, err, tc.want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
	}

	t.Run("node lost", func(t *testing.T) {
		// Connected through node 1 only; the client learns the other nodes from the
		// cluster and must move to one of them when node 1 goes away.
		src := newSource(t, shared.NewSet(), Config{URL: urls[0], Stream: "ORDERS", Consumer: "workers", IncludeAckPending: true})
		if v, err := read(t, src); err != nil || v != 14 {
			t.Fatalf("before: value = %v, %v; want 14", v, err)
		}
		servers[0].Shutdown()
		servers[0].WaitForShutdown()
		deadline := time.Now().Add(30 * time.Second)
		var lastErr error
		for {
			v, err := read(t, src)
			if err == nil && v == 14 {
				cl, err := src.(*source).conn.lazy.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				nc := cl.nc // the same connection as before, reconnected
				if nc.ConnectedUrl() == urls[0] {
					t.Fatalf("still connected to the node that was shut down")
				}
				t.Logf("moved to %s; last error while away: %v", nc.ConnectedUrl(), lastErr)
				return
			}
			if err != nil {
				lastErr = err
			}
			if time.Now().After(deadline) {
				t.Fatalf("no value after losing a node: %v, %v", v, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestTLS connects to a server that requires TLS and a client certificate.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv := natstest.Start(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig = true, true, pki.ServerTLS(t, true)
	})
	clientCert := nats.ClientCert(pki.ClientCertFile, pki.ClientKey)
	backlog(t, srv.ClientURL(), 1, 2, 0, 0, nats.RootCAs(pki.CAFile), clientCert)

	full := configs.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}
	for _, tc := range []struct {
		name    string
		url     string
		tls     *configs.TLS
		wantErr string
	}{
		{"ca and client certificate", srv.ClientURL(), &full, ""},
		{"tls scheme", strings.Replace(srv.ClientURL(), "nats://", "tls://", 1), &full, ""},
		{"server name", srv.ClientURL(), &configs.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey, ServerName: "localhost"}, ""},
		{"skip verify", srv.ClientURL(), &configs.TLS{InsecureSkipVerify: true, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}, ""},
		{"unknown authority", srv.ClientURL(), &configs.TLS{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}, "certificate signed by unknown authority"},
		{"no client certificate", srv.ClientURL(), &configs.TLS{CAFile: pki.CAFile}, "nats: connect to"},
		{"no tls at all", srv.ClientURL(), nil, "nats: connect to"},
		{"missing ca file", srv.ClientURL(), &configs.TLS{CAFile: "/nonexistent/ca.pem"}, "tls ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, shared.NewSet(), Config{URL: tc.url, Stream: "ORDERS", Consumer: "workers", IncludeAckPending: true, TLS: tc.tls})
			v, err := read(t, src)
			if tc.wantErr == "" {
				if err != nil || v != 2 {
					t.Fatalf("value = %v, %v; want 2", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want error containing %q, got %v, %v", tc.wantErr, v, err)
			}
		})
	}
}

// TestCreds authenticates with a .creds file against a server in operator (JWT) mode.
func TestCreds(t *testing.T) {
	srv, creds := natstest.StartWithCreds(t)
	backlog(t, srv.ClientURL(), 1, 3, 1, 1, nats.UserCredentials(creds))
	for _, tc := range []struct {
		name, creds, wantErr string
	}{
		{"creds file", creds, ""},
		{"missing creds file", filepath.Join(t.TempDir(), "nope.creds"), "nats: connect to"},
		{"no credentials", "", "Authorization Violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, shared.NewSet(), Config{URL: srv.ClientURL(), Stream: "ORDERS", Consumer: "workers", IncludeAckPending: true, Creds: tc.creds})
			v, err := read(t, src)
			if tc.wantErr == "" {
				if err != nil || v != 2 {
					t.Fatalf("value = %v, %v; want 2", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want error containing %q, got %v, %v", tc.wantErr, v, err)
			}
			t.Logf("error: %v", err)
		})
	}
}
