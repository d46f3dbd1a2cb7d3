package process

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// warmeeChild is a worker with an HTTP busy probe on $BASE_PORT+replica: busy until it is
// told to go quiet (SIGTSTP), busy again when resumed (SIGCONT), so a member is frozen
// only after it went quiet. WARM_CRASH=<n> makes replica n exit at once.
func warmeeChild() {
	n := os.Getenv(ReplicaEnv)
	if n == os.Getenv("WARM_CRASH") {
		os.Exit(1)
	}
	idx, _ := strconv.Atoi(n)
	base, _ := strconv.Atoi(os.Getenv("BASE_PORT"))
	var quiet atomic.Bool
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGTSTP, syscall.SIGCONT)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+idx))
	if err != nil {
		fmt.Println("warmee cannot listen:", err)
		os.Exit(2)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"busy": %v}`, !quiet.Load())
	}))
	fmt.Printf("warmee ready replica=%s\n", n)
	for sig := range sigs {
		switch sig {
		case syscall.SIGTSTP:
			quiet.Store(true)
			fmt.Printf("warmee quiet replica=%s\n", n)
		case syscall.SIGCONT:
			quiet.Store(false)
			fmt.Printf("warmee resumed replica=%s\n", n)
		case syscall.SIGTERM:
			fmt.Printf("warmee got SIGTERM replica=%s\n", n)
			os.Exit(0)
		}
	}
}

// newWarmTarget supervises serve children (warmees with a drain block when withDrain)
// with a pool of size under a policy max of maxReplicas.
func newWarmTarget(t testing.TB, w *warm.Config, maxReplicas int, withDrain bool, env map[string]string) (*target, *recorder) {
	t.Helper()
	mode := "serve"
	if withDrain {
		mode = "warmee"
		if env == nil {
			env = map[string]string{}
		}
		base := testenv.FreePortRange(t, maxReplicas+4) // replicas and pool members
		env["BASE_PORT"] = strconv.Itoa(base)
		tg, rec := newTestTarget(t, mode, env, func(c *Config) {
			c.Warm = w
			c.Drain = &drain.Config{
				Busy:         drain.Probe{HTTP: &drain.HTTP{BasePort: base, Path: "/busy"}},
				QuietSignal:  "SIGTSTP",
				ResumeSignal: "SIGCONT",
				Timeout:      configs.Duration(10 * time.Second),
				Poll:         configs.Duration(50 * time.Millisecond),
			}
		}, testTiming)
		tg.pool.maxReplicas = maxReplicas
		return tg, rec
	}
	tg, rec := newTestTarget(t, mode, env, func(c *Config) { c.Warm = w }, testTiming)
	tg.pool.maxReplicas = maxReplicas // before the first Scale: nothing reads it yet
	return tg, rec
}

// pooledPids returns the pid of each pool member by index.
func (t *target) pooledPids() map[int]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int{}
	for i, r := range t.pooled {
		out[i] = int(r.pid.Load())
	}
	return out
}

// procState is the state letter of pid in /proc ('T' stopped, 'S' sleeping...).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	st, _, _ := parseStat(b)
	return st
}

// waitState waits until every pid is (or, with not, is not) in state st.
func waitState(t testing.TB, st byte, not bool, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for (procState(pid) == st) == not {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d in state %q, want %s%q", pid, procState(pid), map[bool]string{true: "not "}[not], st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitPool waits until the pool holds members frozen members and none warming.
func waitPool(t testing.TB, tg *target, rec *recorder, members int) warm.Info {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info := tg.Pool()
		if info.Members == members && info.Warming == 0 {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool = %+v, want %d members; log:\n%s", info, members, rec.dump())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func values(m map[int]int) []int { return sortedPids(m) }

// TestWarmPoolHandsOutStoppedMembers: a pool of 3 is made of really stopped processes
// that Status does not count; 1→4 hands out those very processes, running again; the
// refill stays within the policy's max; Close leaves no process.
func TestWarmPoolHandsOutStoppedMembers(t *testing.T) {
	tg, rec := newWarmTarget(t, &warm.Config{Size: 3}, 6, false, nil)
	mustScale(t, tg, 1)
	info := waitPool(t, tg, rec, 3)
	if info.Want != 3 || info.State != warm.Paused {
		t.Errorf("pool = %+v, want 3 paused", info)
	}
	members := tg.pooledPids()
	if !slices.Equal(keys(members), []int{2, 3, 4}) {
		t.Fatalf("member indexes %v, want [2 3 4]", keys(members))
	}
	waitState(t, 'T', false, values(members)...)
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})

	took := mustScale(t, tg, 4)
	t.Logf("1→4 from the pool took %s", took)
	live := tg.pids()
	for idx, pid := range members {
		if live[idx] != pid {
			t.Errorf("replica %d has pid %d, want the member's %d", idx, live[idx], pid)
		}
	}
	waitState(t, 'T', true, values(members)...)
	mustStatus(t, tg, targets.Status{Replicas: 4, Ready: 4})
	if got := tg.Pool().HandedOut; got != 3 {
		t.Errorf("handed out %d, want 3", got)
	}
	// max 6 with 4 running: 2 members, not 3.
	info = waitPool(t, tg, rec, 2)
	if info.Want != 2 {
		t.Errorf("pool want %d with 4 of max 6 running, want 2", info.Want)
	}
	refilled := tg.pooledPids()
	waitState(t, 'T', false, values(refilled)...)

	// Scaling in makes room: the refill keeps the pool at its size again.
	mustScale(t, tg, 2)
	waitPool(t, tg, rec, 3)
	// A lower max in force (a schedule, a reload) shrinks the pool: 2 running of max 4.
	tg.SetMax(4)
	if info := waitPool(t, tg, rec, 2); info.Want != 2 {
		t.Errorf("pool want %d with 2 of max 4 running, want 2", info.Want)
	}

	all := append(values(tg.pids()), values(tg.pooledPids())...)
	mustClose(t, tg, 4*time.Second) // stopped members do not wait for SIGKILL
	waitGone(t, 5*time.Second, all...)
	if n := len(rec.matching(`did not stop in time`)); n != 0 {
		t.Errorf("%d processes needed SIGKILL; log:\n%s", n, rec.dump())
	}
}

// TestWarmPoolDrainSettlesAndParks: with a drain block a member is frozen only once it
// went quiet and answers idle, is resumed when handed out, and a scale-in parks the
// drained replica (the same process) instead of stopping it.
func TestWarmPoolDrainSettlesAndParks(t *testing.T) {
	tg, rec := newWarmTarget(t, &warm.Config{Size: 1, ReuseOnScaleIn: true, MaxSize: 2}, 4, true, nil)
	mustScale(t, tg, 1)
	waitPool(t, tg, rec, 1)
	if len(rec.matching(`warmee quiet replica=2`)) != 1 {
		t.Fatalf("member 2 frozen without being told to go quiet; log:\n%s", rec.dump())
	}
	member := tg.pooledPids()[2]
	waitState(t, 'T', false, member)

	mustScale(t, tg, 2)
	if got := tg.pids()[2]; got != member {
		t.Fatalf("replica 2 is pid %d, want the member %d", got, member)
	}
	rec.waitN(t, `warmee resumed replica=2`, 1, 5*time.Second)
	waitPool(t, tg, rec, 1) // member 3

	before := tg.pids()
	mustScale(t, tg, 1)
	deadline := time.Now().Add(10 * time.Second)
	for tg.Pool().Parked != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no replica parked: pool %+v; log:\n%s", tg.Pool(), rec.dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The parked replica is in the pool with the process it ran as a replica.
	pooled := tg.pooledPids()
	parked := 0
	for idx, pid := range before {
		if pooled[idx] == pid {
			parked = idx
		}
	}
	if parked == 0 {
		t.Fatalf("no replica of %v is in the pool with its own process: pool holds %v", before, pooled)
	}
	waitState(t, 'T', false, pooled[parked])
	if len(rec.matching(`warmee got SIGTERM`)) != 0 {
		t.Errorf("a replica was stopped instead of parked; log:\n%s", rec.dump())
	}
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})
}

// TestWarmPoolCrashingMemberNotRestarted: a member that exits while warming is dropped,
// not restarted into a running replica nobody counts.
func TestWarmPoolCrashingMemberNotRestarted(t *testing.T) {
	tg, rec := newWarmTarget(t, &warm.Config{Size: 1}, 4, true, map[string]string{"WARM_CRASH": "2"})
	mustScale(t, tg, 1)
	rec.waitN(t, `cannot make a warm pool member.*`, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // several restart backoffs of testTiming
	if n := len(rec.matching(`restarting it`)); n != 0 {
		t.Errorf("the member was restarted; log:\n%s", rec.dump())
	}
	if got := tg.pooledPids(); len(got) != 0 {
		t.Errorf("pool still holds %v", got)
	}
	if info := tg.Pool(); !strings.Contains(info.LastError, "member 2") {
		t.Errorf("pool last error %q, want member 2's exit", info.LastError)
	}
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})
}

// BenchmarkWarmScaleUp50 measures 1→50 from a pool of 49 against the same scale-up
// without a pool: the time of the Scale call, after the decision.
func BenchmarkWarmScaleUp50(b *testing.B) {
	for _, size := range []int{49, 0} {
		name := "pool49"
		if size == 0 {
			name = "nopool"
		}
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				var w *warm.Config
				if size > 0 {
					w = &warm.Config{Size: size}
				}
				tg, rec := newBenchTarget(b, w)
				mustScale(b, tg, 1)
				if size > 0 {
					waitPool(b, tg, rec, size)
				}
				b.StartTimer()
				total += mustScale(b, tg, 50)
				b.StopTimer()
				if st, _ := tg.Status(context.Background()); st.Replicas != 50 || st.Ready != 50 {
					b.Fatalf("status %+v after 1→50", st)
				}
				mustClose(b, tg, 30*time.Second)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/scale-up")
		})
	}
}

func newBenchTarget(b *testing.B, w *warm.Config) (*target, *recorder) {
	b.Helper()
	if w != nil {
		return newWarmTarget(b, w, 50, false, nil)
	}
	return newTestTarget(b, "serve", nil, nil, testTiming)
}

// TestWarmUpdate: a resized pool applies in place; adding or removing one needs a new
// group.
func TestWarmUpdate(t *testing.T) {
	tg, _ := newWarmTarget(t, &warm.Config{Size: 2}, 0, false, nil)
	cfg := defaultConfig()
	cfg.Command, cfg.Env = tg.argv, map[string]configs.Secret{childModeEnv: configs.NewSecret("serve")}
	cfg.StopTimeout = configs.Duration(5 * time.Second)
	cfg.Warm = &warm.Config{Size: 5}
	apply, same := tg.Update(cfg)
	if !same {
		t.Fatal("a resized pool is not applied in place")
	}
	apply()
	if got := tg.Pool().Size; got != 5 {
		t.Errorf("pool size %d after the update, want 5", got)
	}
	cfg.Warm = nil
	if _, same := tg.Update(cfg); same {
		t.Error("removing the pool was applied in place")
	}
}
