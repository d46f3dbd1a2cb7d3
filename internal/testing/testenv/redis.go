package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// StartRedis starts the Debian redis-server on a free loopback port with nothing
// persisted (--save "" --appendonly no) and its working dir in a temp dir, and returns its
// host:port. extra arguments are passed on, e.g. "--requirepass", "secret". It stops when
// the test ends.
func StartRedis(t testing.TB, extra ...string) string {
	t.Helper()
	bin := LookPath(t, "redis-server", "apt-get install redis-server")
	dir := t.TempDir()
	port := FreePort(t)
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
	}, extra...)
	startServer(t, "redis-server", dir, exec.Command(bin, args...))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := WaitTCP(context.Background(), addr, 20*time.Second); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	return addr
}
