package ha

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// ttl is Nomad's shortest lock TTL, to keep the tests short.
const ttl = configs.MinLockTTL

// The test binary re-executes itself as a second daemon (an elector in its own process,
// which a test can SIGKILL so that it never releases the lock).
const (
	childEnv     = "AUTOSCALERD_HA_TEST_CHILD"
	childAddrEnv = "AUTOSCALERD_HA_TEST_ADDR"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(child(path, os.Getenv(childAddrEnv)))
	}
	code := m.Run()
	testenv.StopSharedNomad()
	os.Exit(code)
}

// child campaigns for path and prints LEADING when it leads.
func child(path, addr string) int {
	e, err := NewNomad(&configs.HANomad{LockPath: path, TTL: configs.Duration(ttl), Address: addr}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = e.Run(context.Background(), func(ctx context.Context) {
		fmt.Println("LEADING")
		<-ctx.Done()
	})
	return 0
}

func TestNewNomad(t *testing.T) {
	cases := []struct {
		name string
		cfg  configs.HANomad
		want string
	}{
		{"empty path", configs.HANomad{LockPath: " / "}, "ha: nomad: lock_path is empty"},
		{"ttl too short", configs.HANomad{LockPath: "a", TTL: configs.Duration(5 * time.Second)}, "ha: nomad: ttl 5s is outside what Nomad accepts (10s to 24h)"},
		{"credentials in address", configs.HANomad{LockPath: "a", Address: "http://u:hunter2@nomad:4646"}, "carries credentials"},
		{"ok", configs.HANomad{LockPath: "autoscalerd/leader"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewNomad(&tc.cfg, nil)
			if tc.want == "" {
				if err != nil || e.IsLeader() {
					t.Fatalf("NewNomad: %v (leader before Run: %v)", err, e != nil && e.IsLeader())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// campaign is one elector running in this process.
type campaign struct {
	name    string
	e       Elector
	cancel  context.CancelFunc
	stopped chan struct{} // closed when Run returned, with its result in err
	err     error
	led     chan time.Time // when lead was called
	lost    chan time.Time // when lead's context was cancelled
}

func start(t *testing.T, name, addr, path string) *campaign {
	t.Helper()
	e, err := NewNomad(&configs.HANomad{LockPath: path, TTL: configs.Duration(ttl), Address: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &campaign{name: name, e: e, cancel: cancel, stopped: make(chan struct{}),
		led: make(chan time.Time, 10), lost: make(chan time.Time, 10)}
	go func() {
		defer close(c.stopped)
		c.err = e.Run(ctx, func(ctx context.Context) {
			c.led <- time.Now()
			<-ctx.Done()
			c.lost <- time.Now()
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.stopped:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return after cancel", name)
		}
	})
	return c
}

func within(t *testing.T, ch <-chan time.Time, d time.Duration, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
		return time.Time{}
	}
}

func never(t *testing.T, ch <-chan time.Time, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s", what)
	case <-time.After(d):
	}
}

func lockPath(t *testing.T) string { return "autoscalerd-test/" + strings.ToLower(t.Name()) }

func TestOneLeaderAndHandover(t *testing.T) {
	t.Parallel()
	a := testenv.SharedNomad(t)
	path := lockPath(t)
	x, y := start(t, "x", a.Addr, path), start(t, "y", a.Addr, path)

	var leader, standby *campaign
	select {
	case <-x.led:
		leader, standby = x, y
	case <-y.led:
		leader, standby = y, x
	case <-time.After(20 * time.Second):
		t.Fatal("nobody leads")
	}
	// Over more than one renewal period, exactly one leads.
	never(t, standby.led, ttl/2, "both lead")
	if !leader.e.IsLeader() || standby.e.IsLeader() {
		t.Fatalf("IsLeader: %s=%v %s=%v", leader.name, leader.e.IsLeader(), standby.name, standby.e.IsLeader())
	}

	// A leader that stops releases the lock: the standby takes over at once, not after the TTL.
	stopAt := time.Now()
	leader.cancel()
	within(t, leader.lost, 2*time.Second, "the stopped leader's lead context is cancelled")
	<-leader.stopped
	if leader.err != nil {
		t.Errorf("Run: %v", leader.err)
	}
	if leader.e.IsLeader() {
		t.Error("a stopped elector still says it leads")
	}
	took := within(t, standby.led, 3*time.Second, "the standby takes over after a release").Sub(stopAt)
	t.Logf("handover after release: %s", took.Round(time.Millisecond))
	if !standby.e.IsLeader() {
		t.Error("the new leader does not say so")
	}
}

// TestLeaderKilled: a leader that dies without releasing is replaced once Nomad expires
// its lock, and not before.
func TestLeaderKilled(t *testing.T) {
	t.Parallel()
	a := testenv.SharedNomad(t)
	path := lockPath(t)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path, childAddrEnv+"="+a.Addr)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	childLed := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "LEADING" {
				childLed <- time.Now()
			}
		}
	}()
	within(t, childLed, 20*time.Second, "the child process leads")

	standby := start(t, "standby", a.Addr, path)
	never(t, standby.led, 2*time.Second, "the standby leads while the child holds the lock")

	killedAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Nomad keeps an unrenewed lock for twice its TTL, then for the lock delay.
	limit := 2*ttl + lockDelay + 3*time.Second
	took := within(t, standby.led, limit, "the standby takes over from the killed leader").Sub(killedAt)
	t.Logf("takeover after SIGKILL of the leader: %s (ttl %s)", took.Round(time.Millisecond), ttl)
	if took < ttl {
		t.Errorf("took over after %s, before the dead leader's TTL ran out", took)
	}
}

// TestLockTakenAway: when Nomad says the lock is no longer ours (an operator released it,
// and maybe someone else took it), lead's context is cancelled at the next renewal. (Nomad
// refuses to delete a locked variable, 409, so releasing is how a lock is taken away.)
func TestLockTakenAway(t *testing.T) {
	t.Parallel()
	a := testenv.SharedNomad(t)
	admin, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		take func(path string) error
	}{
		{"released and taken by another holder", func(path string) error {
			v, _, err := admin.Variables().Read(path, nil)
			if err != nil {
				return err
			}
			if v.Lock == nil || v.Lock.ID == "" {
				return fmt.Errorf("the variable shows no lock: %+v", v)
			}
			if _, _, err := admin.Variables().ReleaseLock(&api.Variable{Path: path, Lock: &api.VariableLock{ID: v.Lock.ID}}, nil); err != nil {
				return fmt.Errorf("release: %w", err)
			}
			_, _, err = admin.Variables().AcquireLock(&api.Variable{Path: path, Lock: &api.VariableLock{TTL: "1h"}}, nil)
			return err
		}},
		{"released", func(path string) error {
			v, _, err := admin.Variables().Read(path, nil)
			if err != nil {
				return err
			}
			_, _, err = admin.Variables().ReleaseLock(&api.Variable{Path: path, Lock: &api.VariableLock{ID: v.LockID()}}, nil)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := lockPath(t)
			c := start(t, "leader", a.Addr, path)
			within(t, c.led, 20*time.Second, "leads")
			takenAt := time.Now()
			if err := tc.take(path); err != nil {
				t.Fatal(err)
			}
			took := within(t, c.lost, ttl/3+2*time.Second, "lead's context is cancelled").Sub(takenAt)
			t.Logf("noticed after %s", took.Round(time.Millisecond))
			if c.e.IsLeader() {
				t.Error("still says it leads")
			}
		})
	}
}

// proxy forwards TCP connections to addr until cut.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, addr string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestRenewalFails: a leader cut off from Nomad steps down within the TTL, before Nomad
// lets anyone else take the lock, so two daemons never lead at once.
func TestRenewalFails(t *testing.T) {
	t.Parallel()
	a := testenv.SharedNomad(t)
	u, err := url.Parse(a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	path := lockPath(t)
	p := newProxy(t, u.Host)
	leader := start(t, "leader", "http://"+p.l.Addr().String(), path)
	within(t, leader.led, 20*time.Second, "leads")
	standby := start(t, "standby", a.Addr, path)

	cutAt := time.Now()
	p.cut()
	lostAt := within(t, leader.lost, ttl+2*time.Second, "the cut-off leader steps down")
	t.Logf("stepped down %s after the cut", lostAt.Sub(cutAt).Round(time.Millisecond))
	if leader.e.IsLeader() {
		t.Error("the cut-off leader still says it leads")
	}
	ledAt := within(t, standby.led, 2*ttl+lockDelay+3*time.Second, "the standby takes over")
	t.Logf("standby took over %s after the cut, %s after the old leader stepped down", ledAt.Sub(cutAt).Round(time.Millisecond), ledAt.Sub(lostAt).Round(time.Millisecond))
	if !ledAt.After(lostAt) {
		t.Errorf("the standby led at %s, before the old leader stepped down at %s", ledAt, lostAt)
	}
}

// TestStandbyWaits: a standby waits on a blocking query instead of polling the lock. Each
// acquire attempt is a Raft write on the Nomad servers, and a system job has a standby on
// every node; renewals are not Raft writes. (Not parallel: it counts the agent's writes.)
func TestStandbyWaits(t *testing.T) {
	a := testenv.SharedNomad(t)
	admin, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	applied := func() uint64 {
		self, err := admin.Agent().Self()
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		fmt.Sscan(self.Stats["raft"]["applied_index"], &n)
		return n
	}
	path := lockPath(t)
	x := start(t, "x", a.Addr, path)
	within(t, x.led, 20*time.Second, "leads")
	start(t, "y", a.Addr, path)
	start(t, "z", a.Addr, path)
	time.Sleep(time.Second)
	before := applied()
	time.Sleep(ttl / 2)
	if writes := applied() - before; writes > 2 {
		t.Errorf("%d Raft writes in %s with a leader and two standbys; the standbys poll", writes, ttl/2)
	}
}
