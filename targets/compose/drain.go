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

// cdrain is one container's drain. It is what state_dir and the container's marker keep.
type cdrain struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	// Started is the container's start time when the drain began. Quiet lives in the
	// worker process: a container started again since (restart policy, a stopped template
	// started by a scale-up) takes work again, and the record is stale.
	Started string `json:"started,omitempty"`
	// ResumeSignal or Resume lets a daemon whose drain block is gone un-quiet the container.
	ResumeSignal string       `json:"resume_signal,omitempty"`
	Resume       *drain.Probe `json:"resume,omitempty"`

	book uint64
	back chan struct{}
	// marked: the container holds the marker, so a daemon without this one's state_dir
	// finds the drain too.
	marked bool
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

// recoverDrains takes up, once, the drains a previous run of the daemon left, or another
// daemon (an HA leader that was replaced): the records in state_dir and the markers in the
// containers. Containers still running (and not started again since) are drained on (the
// quiet signal again, the deadline they had), or, when the drain block is gone, told to
// resume (or stopped when there is no way to resume them): a pool is never left quietly
// idle.
func (t *Target) recoverDrains(ctx context.Context, c api, rs []replica) {
	t.dr.mu.Lock()
	defer t.dr.mu.Unlock()
	if t.dr.recovered {
		return
	}
	var running []replica
	for _, r := range rs {
		if r.running() && t.dr.active[r.id] == nil {
			running = append(running, r)
		}
	}
	marks, err := t.markers(ctx, c, running)
	if err != nil {
		t.log.Warn("cannot read the drain markers of the containers; retrying on the next tick", "err", err)
		return
	}
	found := map[string]*cdrain{}
	for id, m := range marks {
		if !m.Resumed {
			d := m.cdrain
			d.marked = true
			found[id] = &d
		}
	}
	if t.dr.file != "" {
		b, err := os.ReadFile(t.dr.file)
		var list []*cdrain
		if err == nil {
			err = json.Unmarshal(b, &list)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Warn("cannot read the drains a previous run left; retrying on the next tick", "file", t.dr.file, "err", err)
			return
		}
		for _, d := range list {
			if _, ok := marks[d.ID]; !ok {
				found[d.ID] = d // no marker (a read-only root filesystem): the record is all there is
			}
		}
	}
	t.dr.recovered = true
	for _, r := range running {
		d := found[r.id]
		if d == nil {
			continue // gone meanwhile, or never drained: nothing to take up
		}
		if d.Started != "" {
			res, err := c.ContainerInspect(ctx, r.id, client.ContainerInspectOptions{})
			if err == nil && res.Container.State != nil && res.Container.State.StartedAt != d.Started {
				t.log.Info("a container drained before was started again since, so it is not quiet any more", "container", r.name)
				continue
			}
		}
		if t.cfg.Drain == nil {
			t.dr.wg.Add(1)
			go func() {
				defer t.dr.wg.Done()
				ctx, cancel := context.WithTimeout(t.dr.ctx, scaleStopLimit)
				defer cancel()
				t.undoDrain(ctx, c, r, d, "a previous run or another daemon left this container quiet and the drain block is gone")
			}()
			continue
		}
		t.log.Warn("resuming the drain of a container that a previous run or another daemon started", "container", d.Name, "since", d.Since, "deadline", d.Deadline)
		d.book = t.dr.book.Start(d.Name, d.Reason+"; drain resumed after a daemon restart", d.Since)
		d.back = make(chan struct{})
		t.dr.active[d.ID] = d
		t.dr.wg.Add(1)
		go t.runDrain(c, r, d, t.cfg.Drain)
	}
	t.saveDrains()
}

// undoDrain un-quiets container r, whose drain nobody will finish: the resume signal or
// call its record names, else it is stopped (a quiet container takes no work, so it is
// no capacity either). why starts the log lines.
func (t *Target) undoDrain(ctx context.Context, c api, r replica, d *cdrain, why string) {
	if d.ResumeSignal != "" || d.Resume != nil {
		err := t.signalOrCall(ctx, c, r, d.ResumeSignal, d.Resume)
		if err == nil {
			t.log.Warn(why+": told it to resume", "container", r.name)
			t.unmark(ctx, c, r, d)
			return
		}
		t.log.Warn(why+": resuming it failed", "container", r.name, "err", err)
	}
	t.log.Warn(why+" and it cannot be resumed: stopping it", "container", r.name)
	t.finishDrain(c, r, false)
}

// mark writes d's marker into the container, before it is told to go quiet: a container
// that is quiet always says so.
func (t *Target) mark(ctx context.Context, c api, r replica, d *cdrain) {
	err := writeMarker(ctx, c, r.id, marker{cdrain: *d})
	t.dr.mu.Lock()
	d.marked = err == nil
	t.dr.mu.Unlock()
	if err != nil {
		where := "only this daemon's state_dir records the drain"
		if t.dr.file == "" {
			where = "only this daemon knows of the drain (no state_dir)"
		}
		t.log.Warn("cannot write the drain marker into the container (read-only root filesystem?); "+where, "container", r.name, "err", err)
	}
}

// unmark overwrites a marker once the container takes work again.
func (t *Target) unmark(ctx context.Context, c api, r replica, d *cdrain) {
	t.dr.mu.Lock()
	marked := d.marked
	t.dr.mu.Unlock()
	if !marked {
		return
	}
	if err := writeMarker(ctx, c, r.id, marker{cdrain: *d, Resumed: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.log.Warn("cannot mark a resumed container as taking work; a daemon that starts now would drain it again", "container", r.name, "err", err)
	}
}

// startDrains chooses len(live)-n containers and drains them in the background.
func (t *Target) startDrains(ctx context.Context, c api, live []replica, n int) error {
	cfg := t.cfg.Drain
	cands := make([]drain.Candidate, 0, len(live))
	byName := map[string]replica{}
	started := map[string]string{}
	for _, r := range live {
		byName[r.name] = r
		cands = append(cands, drain.Candidate{Name: r.name, Number: r.number})
	}
	// Inspect for the start time and IP; a container that cannot be inspected counts as
	// just started, so it goes last.
	for i := range cands {
		if res, err := c.ContainerInspect(ctx, byName[cands[i].Name].id, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
			started[cands[i].Name] = res.Container.State.StartedAt
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
		d := &cdrain{ID: r.id, Name: r.name, Reason: reasons[i], Since: now, Deadline: now.Add(cfg.TimeoutOrDefault()), Started: started[r.name],
			ResumeSignal: cfg.ResumeSignal, Resume: cfg.Resume,
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
	t.mark(t.dr.ctx, c, r, d)
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
		t.unmark(ctx, c, r, d)
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

// closeDrains ends the drains' goroutines. Their records stay, in state_dir and in the
// containers' markers, for the next run or another daemon to take up; a drain recorded
// nowhere (no state_dir and no marker) would be found by nobody, so its container is
// resumed, or stopped when it cannot be.
func (t *Target) closeDrains(ctx context.Context) {
	t.dr.cancel()
	t.dr.wg.Wait()
	t.dr.mu.Lock()
	left := t.dr.active
	t.dr.active = map[string]*cdrain{}
	t.dr.mu.Unlock()
	var lost []*cdrain
	for _, d := range left {
		if t.dr.file == "" && !d.marked {
			lost = append(lost, d)
		}
	}
	if len(lost) == 0 {
		return
	}
	c, err := t.client(ctx)
	if err != nil {
		return
	}
	for _, d := range lost {
		t.undoDrain(ctx, c, replica{id: d.ID, name: d.Name}, d, "stopping with a replica draining that nothing records (no state_dir, no marker)")
	}
}
