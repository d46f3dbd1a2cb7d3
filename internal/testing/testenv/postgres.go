package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster started for one test. It holds one database,
// owned by a role that logs in over TCP with a password (scram-sha-256), so that wrong
// credentials fail the way they do in production.
type Postgres struct {
	Host      string // 127.0.0.1
	Port      int
	SocketDir string // also where the cluster lives
	User      string
	Password  string
	Database  string
}

// DSN is the URL the test role connects with, over TCP with its password.
func (p *Postgres) DSN() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path:     "/" + p.Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Exec runs SQL statements in the test database as the test role.
func (p *Postgres) Exec(t testing.TB, statements ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("postgres: %s: %v", s, err)
		}
	}
}

// postgresBin finds the directory of initdb and pg_ctl: Debian keeps them out of PATH,
// under /usr/lib/postgresql/<major>/bin.
func postgresBin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] > dirs[j] })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	Missing(t, "PostgreSQL server binaries (initdb, pg_ctl)", "apt-get install postgresql")
	return ""
}

// StartPostgres initdb's a cluster in a temp dir, starts it with pg_ctl on a free loopback
// port (unix socket in the same dir), creates a password-authenticated role and its
// database, and stops and removes everything when the test ends.
//
// PostgreSQL refuses to run as root; when the tests run as root, the cluster runs as the
// unprivileged "postgres" user that the Debian package creates.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	dir, err := os.MkdirTemp("", "autoscalerd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, `an unprivileged "postgres" user to run PostgreSQL as`, "apt-get install postgresql (it creates the user)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postgres: %s %v: %v\n%s", name, args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	run("initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")

	port := FreePort(t)
	// fsync and friends are off: the cluster lives for one test, speed matters, durability
	// does not.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off", port, dir)
	run("pg_ctl", "start", "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "60", "-o", opts)
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, "postgres", filepath.Join(dir, "postgres.log"))
		}
		run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w")
	})

	pg := &Postgres{Host: "127.0.0.1", Port: port, SocketDir: dir, User: "scaler", Password: randomHex(12), Database: "work"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Over the unix socket as the superuser: trusted, so no password is needed to set up.
	admin, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", dir, port))
	if err != nil {
		t.Fatalf("postgres: connect as superuser: %v", err)
	}
	defer admin.Close(ctx)
	for _, s := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pg.User, pg.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pg.Database, pg.User),
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("postgres: %s: %v", s, err)
		}
	}
	return pg
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
