package testenv

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RabbitMQ is a broker started for one test.
type RabbitMQ struct {
	// AMQPURL is the AMQP 0-9-1 address, with the guest user (allowed from loopback).
	AMQPURL string
	// ManagementURL is the management HTTP API's base, e.g. http://127.0.0.1:15672.
	ManagementURL string
	// Dir holds the node's data and logs (log/ is worth reading when a test fails).
	Dir string
}

// rabbitmqHow is what Missing tells when the broker is not installed.
const rabbitmqHow = "install the Debian packages rabbitmq-server and erlang-base (apt-get install rabbitmq-server)"

// StartRabbitMQ starts a RabbitMQ node with the management plugin on free loopback ports,
// everything it writes (Mnesia, logs, Erlang cookie) in a temp dir, and stops it when the
// test ends. It runs its own epmd on a private port, so it neither needs nor disturbs a
// broker the Debian package may have started on the default ports. Statistics are
// collected every 500ms so management numbers follow AMQP activity quickly.
//
// Starting takes 10-30s (Erlang boots the whole node): share one broker per package.
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	const server = "/usr/lib/rabbitmq/bin/rabbitmq-server" // the wrapper in /usr/sbin would switch to the rabbitmq user
	if _, err := os.Stat(server); err != nil {
		Missing(t, "rabbitmq-server", rabbitmqHow)
	}
	epmd := LookPath(t, "epmd", rabbitmqHow)

	dir := t.TempDir()
	amqpPort, mgmtPort, epmdPort, distPort := FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`listeners.tcp.1 = 127.0.0.1:%d
management.tcp.ip = 127.0.0.1
management.tcp.port = %d
collect_statistics_interval = 500
`, amqpPort, mgmtPort)
	for name, content := range map[string]string{"rabbitmq.conf": conf, "enabled_plugins": "[rabbitmq_management].\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	logf, err := os.Create(filepath.Join(dir, "log", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })

	// epmd maps node names to ports. Started by erl it would daemonise and outlive the
	// test; started here it is a child we stop.
	epmdCmd := exec.Command(epmd, "-port", fmt.Sprint(epmdPort), "-address", "127.0.0.1")
	epmdCmd.Stdout, epmdCmd.Stderr = logf, logf
	startProcessGroup(t, epmdCmd, "epmd")

	node := fmt.Sprintf("autoscalerd-test-%d@localhost", amqpPort)
	cmd := exec.Command(server)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"), // the Erlang cookie is created here
		"LANG=C.UTF-8",
		"ERL_EPMD_PORT=" + fmt.Sprint(epmdPort),
		"RABBITMQ_NODENAME=" + node,
		"RABBITMQ_DIST_PORT=" + fmt.Sprint(distPort),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	exited := startProcessGroup(t, cmd, "rabbitmq-server")

	r := &RabbitMQ{
		AMQPURL:       fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", amqpPort),
		ManagementURL: fmt.Sprintf("http://127.0.0.1:%d", mgmtPort),
		Dir:           dir,
	}
	if err := waitHTTPReady(r.ManagementURL+"/api/overview", "guest", "guest", exited, 90*time.Second); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "log", "console.log"))
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		t.Fatalf("rabbitmq-server: %v\n%s", err, out)
	}
	return r
}

// API sends one request to the management API as guest (to declare vhosts and the like)
// and fails the test unless it answers 2xx.
func (r *RabbitMQ) API(t testing.TB, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, r.ManagementURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
}
