package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// drains is the compose target's drain state: the containers being drained, which are
// not capacity (Status and Scale leave them out), and the record of them in state_dir so
// that a restarted daemon finds them again.
type drains struct {
	book  drain.Book
	httpc *http.Client
	// file is where the records are kept ("" without a state_dir: memory only).
	file string

	mu sync.Mutex
	// recovered is set once the records of a previous run have been taken up.
	recovered bool
	active    map[string]*cdrain // by container ID
	finishMu  sync.Mutex         // one drain ends at a time: the last container stays as the template
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// cdrain is one container's drain. It is what state_dir keeps.
type cdrain struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	// ResumeSignal lets a restarted daemon whose drain block is gone un-quiet the container.
	ResumeSignal string `json:"resume_signal,omitempty"`

	book uint64
	back chan struct{}
}

func newDrains(stateDir, project, service string) *drains {
	d := &drains{httpc: &http.Client{}, active: map[string]*cdrain{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if stateDir != "" {
		d.file = filepath.Join(stateDir, "drains", "compose-"+project+"-"+service+".json")
	}
	return d
}

// Drains implements targets.Drainer.
func (t *Target) Drains() []targets.DrainInfo { return t.dr.book.List() }

// notDraining leaves out the containers being drained.
func (t *Target) notDraining(rs []replica) []replica {
	t.dr.mu.Lock()
	defer t.dr.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(rs), func(r replica) bool { return t.dr.active[r.id] != nil })
}

// save writes the records of the drains under way. t.dr.mu is held.
func (t *Target) saveDrains() {
	if t.dr.file == "" {
		return
	}
	list := make([]*cdrain, 0, len(t.dr.active))
	for _, d := range t.dr.active {
		list = append(list, d)
	}
	slices.SortFunc(list, func(a, b *cdrain) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(list)
	if err == nil {
		err = writeAtomic(t.dr.file, b)
	}
	if err != nil {
		// The drains go on; only a daemon restarted now would not find them.
		t.log.Warn("cannot record the drains in state_dir; a restart now would not resume them", "err", err)
	}
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".drains-*.tmp")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// recoverDrains takes up, once, the drains a previous run of the daemon left: containers
// still running are drained on (the quiet signal again, the deadline they had), or, when
// the drain block is gone, told to resume (or stopped when there is no way to resume
// them): a pool is never left quietly idle.
func (t *Target) recoverDrains(ctx context.Context, c api, rs []replica) {
	t.dr.mu.Lock()
	defer t.dr.mu.Unlock()
	if t.dr.recovered || t.dr.file == "" {
		t.dr.recovered = true
		return
	}
	b, err := os.ReadFile(t.dr.file)
	if errors.Is(err, os.ErrNotExist) {
		t.dr.recovered = true
		return
	}
	var list []*cdrain
	if err == nil {
		err = json.Unmarshal(b, &list)
	}
	if err != nil {
		t.log.Warn("cannot read the drains a previous run left; retrying on the next tick", "file", t.dr.file, "err", err)
		return
	}
	t.dr.recovered = true
	running := map[string]replica{}
	for _, r := range rs {
		if r.running() {
			running[r.id] = r
		}
	}
	for _, d := range list {
		r, ok := running[d.ID]
		if !ok {
			continue // gone meanwhile: the drain is over
		}
		if t.cfg.Drain == nil {
			t.dr.wg.Add(1)
			go t.undoOrphanDrain(c, r, d)
			continue
		}
		t.log.Warn("resuming the drain of a container that a previous run of the daemon started", "container", d.Name, "since", d.Since, "deadline", d.Deadline)
		d.book = t.dr.book.Start(d.Name, d.Reason+"; drain resumed after a daemon restart", d.Since)
		d.back = make(chan struct{})
		t.dr.active[d.ID] = d
		t.dr.wg.Add(1)
		go t.runDrain(c, r, d, t.cfg.Drain)
	}
	t.saveDrains()
}

// undoOrphanDrain handles a container left quiet by a previous run whose configuration
// has no drain block any more.
func (t *Target) undoOrphanDrain(c api, r replica, d *cdrain) {
	defer t.dr.wg.Done()
	ctx, cancel := context.WithTimeout(t.dr.ctx, time.Minute)
	defer cancel()
	if d.ResumeSignal != "" {
		if _, err := c.ContainerKill(ctx, r.id, client.ContainerKillOptions{Signal: d.ResumeSignal}); err == nil {
			t.log.Warn("a previous run left this container quiet and the drain block is gone: told it to resume", "container", r.name, "signal", d.ResumeSignal)
			return
		}
	}
	t.log.Warn("a previous run left this container quiet, the drain block is gone and it cannot be resumed: stopping it", "container", r.name)
	if err := t.stopAndRemove(ctx, c, r); err != nil {
		t.log.Error("cannot stop a container left quiet", "container", r.name, "err", err)
	}
}

// startDrains chooses len(live)-n containers and drains them in the background.
func (t *Target) startDrains(ctx context.Context, c api, live []replica, n int) error {
	cfg := t.cfg.Drain
	cands := make([]drain.Candidate, 0, len(live))
	byName := map[string]replica{}
	for _, r := range live {
		byName[r.name] = r
		cands = append(cands, drain.Candidate{Name: r.name, Number: r.number})
	}
	// Inspect for the start time and IP; a container that cannot be inspected counts as
	// just started, so it goes last.
	for i := range cands {
		if res, err := c.ContainerInspect(ctx, byName[cands[i].Name].id, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
			cands[i].Started, _ = time.Parse(time.RFC3339Nano, res.Container.State.StartedAt)
		}
		if cands[i].Started.IsZero() {
			cands[i].Started = time.Now()
		}
	}
	drain.ProbeAll(ctx, cands, func(ctx context.Context, cd drain.Candidate) (bool, error) {
		return t.busy(ctx, c, cfg, byName[cd.Name])
	})
	if err := ctx.Err(); err != nil {
		return t.errorf("scaling down: checking which replicas are busy: %w", err)
	}
	chosen, reasons := drain.Pick(cands, len(live)-n, time.Now())
	t.dr.mu.Lock()
	defer t.dr.mu.Unlock()
	for i, cd := range chosen {
		r := byName[cd.Name]
		now := time.Now()
		d := &cdrain{ID: r.id, Name: r.name, Reason: reasons[i], Since: now, Deadline: now.Add(cfg.TimeoutOrDefault()), ResumeSignal: cfg.ResumeSignal,
			book: t.dr.book.Start(r.name, reasons[i], now), back: make(chan struct{})}
		t.dr.active[r.id] = d
		t.log.Info("draining replica", "container", r.name, "reason", reasons[i], "timeout", cfg.TimeoutOrDefault().String())
		t.dr.wg.Add(1)
		go t.runDrain(c, r, d, cfg)
	}
	t.saveDrains()
	return nil
}

// runDrain tells the container to go quiet, waits until it is idle or its deadline, and
// then stops and removes it as a scale-down does.
func (t *Target) runDrain(c api, r replica, d *cdrain, cfg *drain.Config) {
	defer t.dr.wg.Done()
	if err := t.signalOrCall(t.dr.ctx, c, r, cfg.QuietSignal, cfg.Quiet); err != nil {
		t.log.Warn("cannot tell the replica to go quiet; draining it anyway", "container", r.name, "err", err)
	}
	gone := make(chan struct{}) // the Watch events are not per drain; a failed probe on a gone container ends it
	out := drain.Wait(t.dr.ctx, func(ctx context.Context) (bool, error) {
		b, err := t.busy(ctx, c, cfg, r)
		if cerrdefs.IsNotFound(err) {
			closeOnce(gone)
		}
		return b, err
	}, cfg.PollOrDefault(), time.Until(d.Deadline), gone, d.back, func() { t.dr.book.Set(d.book, targets.DrainWaiting, time.Now()) })
	if t.dr.ctx.Err() != nil {
		return // closing: the record stays for the next run
	}
	switch out.State {
	case targets.DrainTakenBack:
		return // takeBack did the rest
	case targets.DrainTimedOut:
		t.log.Warn("drain timed out while the replica is still busy; stopping it now cuts its work short", "container", r.name, "timeout", cfg.TimeoutOrDefault().String())
	case targets.DrainStopped:
		t.log.Info("replica is idle; stopping it", "container", r.name)
	}
	t.dr.mu.Lock()
	mine := t.dr.active[r.id] == d
	t.dr.mu.Unlock()
	if !mine {
		return
	}
	if out.State != targets.DrainGone {
		t.finishDrain(c, r, out.State == targets.DrainStopped)
	}
	t.dr.book.Set(d.book, out.State, time.Now()) // once stopped, so the time includes the stop
	t.dr.mu.Lock()
	delete(t.dr.active, r.id)
	t.saveDrains()
	t.dr.mu.Unlock()
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// finishDrain stops the drained container with its normal stop signal and grace, and
// removes it, unless it is the service's last container, which stays stopped as the
// template to scale up from. A container that drained to idle is parked in the warm pool
// instead when the pool takes scale-ins and has room.
func (t *Target) finishDrain(c api, r replica, idle bool) {
	t.dr.finishMu.Lock()
	defer t.dr.finishMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), scaleStopLimit)
	defer cancel()
	if idle && t.parkDrained(ctx, c, r) {
		return
	}
	rs, err := t.replicas(ctx, c)
	last := err == nil && len(rs) == 1
	if last {
		err = t.stop(ctx, c, r)
	} else {
		err = t.stopAndRemove(ctx, c, r)
	}
	if err != nil {
		t.log.Error("cannot stop a drained replica", "container", r.name, "err", err)
	}
}

// scaleStopLimit bounds the stop of one drained container (its grace period and more).
const scaleStopLimit = 5 * time.Minute

// takeBack resumes up to k draining containers (lowest number first) and returns how many.
func (t *Target) takeBack(ctx context.Context, c api, all []replica, k int) int {
	cfg := t.cfg.Drain
	if cfg == nil || (cfg.ResumeSignal == "" && cfg.Resume == nil && (cfg.QuietSignal != "" || cfg.Quiet != nil)) {
		return 0 // a quiet container that cannot be resumed would take no work
	}
	taken := 0
	for _, r := range all {
		if taken == k {
			break
		}
		t.dr.mu.Lock()
		d := t.dr.active[r.id]
		t.dr.mu.Unlock()
		if d == nil || !r.running() {
			continue
		}
		if err := t.signalOrCall(ctx, c, r, cfg.ResumeSignal, cfg.Resume); err != nil {
			t.log.Warn("cannot take a draining replica back (resume failed); it goes on draining and a new replica is started instead", "container", r.name, "err", err)
			continue
		}
		t.dr.mu.Lock()
		if t.dr.active[r.id] == d {
			delete(t.dr.active, r.id)
			close(d.back)
			t.dr.book.Set(d.book, targets.DrainTakenBack, time.Now())
			t.log.Info("took a draining replica back", "container", r.name)
			taken++
			t.saveDrains()
		}
		t.dr.mu.Unlock()
	}
	return taken
}

// reach is how the drain reaches container r: its IP, `docker exec`, `docker kill
// --signal`, and a stat of a path inside it.
func (t *Target) reach(c api, r replica) drain.Reach {
	return drain.Reach{
		Client: t.dr.httpc,
		URL:    func(ctx context.Context, h *drain.HTTP) (string, error) { return t.containerURL(ctx, c, r, h) },
		Run:    func(ctx context.Context, argv []string) (int, error) { return t.execIn(ctx, c, r, argv) },
		Signal: func(ctx context.Context, sig syscall.Signal) error {
			_, err := c.ContainerKill(ctx, r.id, client.ContainerKillOptions{Signal: drain.SignalName(sig)})
			return err
		},
		File: func(ctx context.Context, path string) (bool, error) {
			_, err := c.ContainerStatPath(ctx, r.id, client.ContainerStatPathOptions{Path: path})
			switch {
			case err == nil:
				return true, nil
			case cerrdefs.IsNotFound(err):
				// The file, or the container, is gone; tell them apart.
				if _, ierr := c.ContainerInspect(ctx, r.id, client.ContainerInspectOptions{}); cerrdefs.IsNotFound(ierr) {
					return false, ierr
				}
				return false, nil
			}
			return false, err
		},
	}
}

// busy asks container r whether it is working.
func (t *Target) busy(ctx context.Context, c api, cfg *drain.Config, r replica) (bool, error) {
	return t.reach(c, r).Busy(ctx, cfg.Busy)
}

// signalOrCall sends sig to the container, or makes the call.
func (t *Target) signalOrCall(ctx context.Context, c api, r replica, sig string, call *drain.Probe) error {
	if err := t.reach(c, r).Tell(ctx, sig, call); err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// containerURL is http://<the container's IP on its first network>:port/path.
func (t *Target) containerURL(ctx context.Context, c api, r replica, h *drain.HTTP) (string, error) {
	res, err := c.ContainerInspect(ctx, r.id, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspecting %s: %w", r.name, err)
	}
	ns := res.Container.NetworkSettings
	if ns == nil {
		return "", fmt.Errorf("%s has no network", r.name)
	}
	names := make([]string, 0, len(ns.Networks))
	for name := range ns.Networks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if ep := ns.Networks[name]; ep != nil && ep.IPAddress.IsValid() {
			return fmt.Sprintf("http://%s%s", netJoin(ep.IPAddress.String(), h.Port), h.Path), nil
		}
	}
	return "", fmt.Errorf("%s has no IP address on its networks", r.name)
}

func netJoin(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

// execIn runs argv inside the container and returns its exit code.
func (t *Target) execIn(ctx context.Context, c api, r replica, argv []string) (int, error) {
	ex, err := c.ExecCreate(ctx, r.id, client.ExecCreateOptions{Cmd: argv})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", r.name, err)
	}
	if _, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", r.name, err)
	}
	for {
		res, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", r.name, err)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("exec in %s: %w", r.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// closeDrains ends the drains' goroutines. Their records stay in state_dir for the next
// run; without a state_dir nothing would find them again, so the containers are resumed,
// or stopped when they cannot be.
func (t *Target) closeDrains(ctx context.Context) {
	t.dr.cancel()
	t.dr.wg.Wait()
	t.dr.mu.Lock()
	left := t.dr.active
	t.dr.active = map[string]*cdrain{}
	t.dr.mu.Unlock()
	if t.dr.file != "" || len(left) == 0 {
		return
	}
	c, err := t.client(ctx)
	if err != nil {
		return
	}
	for id, d := range left {
		r := replica{id: id, name: d.Name}
		if d.ResumeSignal != "" {
			if _, err := c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: d.ResumeSignal}); err == nil {
				t.log.Warn("stopping with a replica draining and no state_dir to record it: told it to resume", "container", d.Name)
				continue
			}
		}
		t.log.Warn("stopping with a replica draining and no state_dir to record it: stopping it", "container", d.Name)
		t.finishDrain(c, r, false)
	}
}
