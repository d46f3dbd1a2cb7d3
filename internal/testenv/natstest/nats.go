// Package natstest starts real NATS servers with JetStream inside the test process (the
// nats-server module, embedded), alone or as a cluster on loopback.
//
// It is a package of its own rather than a file of testenv because the server is a large
// dependency: only the tests that start NATS should link it.
package natstest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/autoscalerd/autoscalerd/internal/testenv"
)

// Start runs one NATS server with JetStream on a free loopback port, its store in a
// temp dir, and stops it when the test ends. edit may set auth and the like.
func Start(t testing.TB, edit func(*server.Options)) *server.Server {
	t.Helper()
	opts := baseOptions(t, "solo")
	if edit != nil {
		edit(opts)
	}
	return run(t, opts)
}

// StartCluster runs n servers that form one JetStream cluster over routes on loopback,
// and returns once JetStream has a meta leader that every server knows, so streams with
// n replicas can be created straight away.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = testenv.FreePort(t)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		opts := baseOptions(t, fmt.Sprintf("n%d", i+1))
		opts.Cluster.Name = "autoscalerd-test"
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = routePorts[i]
		opts.Routes = routes
		servers[i] = run(t, opts)
	}
	WaitClusterReady(t, servers, 30*time.Second)
	return servers
}

// WaitClusterReady waits until the servers are routed to each other and agree on a
// JetStream meta leader that sees all of them as current peers.
func WaitClusterReady(t testing.TB, servers []*server.Server, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ready, why := clusterReady(servers); ready {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("NATS cluster not ready after %s: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func clusterReady(servers []*server.Server) (bool, string) {
	var leader *server.Server
	for _, s := range servers {
		if s.NumRoutes() < len(servers)-1 {
			return false, fmt.Sprintf("%s has %d routes", s.Name(), s.NumRoutes())
		}
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return false, "no JetStream meta leader yet"
	}
	for _, s := range servers {
		if !s.JetStreamIsCurrent() {
			return false, fmt.Sprintf("%s is not current with the meta leader", s.Name())
		}
	}
	peers := leader.JetStreamClusterPeers()
	if len(peers) < len(servers) {
		return false, fmt.Sprintf("meta leader sees %d of %d peers", len(peers), len(servers))
	}
	return true, ""
}

func baseOptions(t testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   filepath.Join(t.TempDir(), name),
		// The smallest footprint that still lets streams be created.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  256 << 20,
	}
}

func run(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server %s: %v", opts.ServerName, err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server %s: not ready for connections within 10s", opts.ServerName)
	}
	return s
}
