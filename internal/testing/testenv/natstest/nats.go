// Package natstest starts real NATS servers with JetStream inside the test process (the
// nats-server module, embedded), alone or as a cluster on loopback.
//
// It is a package of its own rather than a file of testenv because the server is a large
// dependency: only the tests that start NATS should link it.
package natstest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
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

// StartWithCreds runs a server in operator (decentralized JWT) mode with one JetStream
// account, and returns it with the path of a .creds file (user JWT and NKey seed, as
// `nsc` writes it) for a user of that account.
func StartWithCreds(t testing.TB) (*server.Server, string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, _ := op.PublicKey()
	opClaims := jwt.NewOperatorClaims(opPub)
	opClaims.Name = "test-operator"
	opJWT, err := opClaims.Encode(op)
	must(err)
	opDecoded, err := jwt.DecodeOperatorClaims(opJWT)
	must(err)

	resolver := &server.MemAccResolver{}
	account := func(name string, jetstream bool) nkeys.KeyPair {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if jetstream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		enc, err := ac.Encode(op)
		must(err)
		must(resolver.Store(pub, enc))
		return kp
	}
	sys := account("SYS", false)
	app := account("APP", true)
	sysPub, _ := sys.PublicKey()

	user, err := nkeys.CreateUser()
	must(err)
	userPub, _ := user.PublicKey()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(app)
	must(err)
	seed, err := user.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)
	credsFile := filepath.Join(t.TempDir(), "app.creds")
	must(os.WriteFile(credsFile, creds, 0o600))

	s := Start(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{opDecoded}
		o.AccountResolver = resolver
		o.SystemAccount = sysPub
	})
	return s, credsFile
}
