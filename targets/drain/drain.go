package drain

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
)

// Candidate is a replica a scale-in may drain, with what its busy probe said.
type Candidate struct {
	Name    string
	Number  int
	Started time.Time
	Busy    bool
	// Err is a failed busy probe: the replica counts as busy, since a replica that cannot
	// answer may well be working.
	Err error
}

// ProbeAll asks every candidate at once whether it is busy, each within probeTimeout.
func ProbeAll(ctx context.Context, cs []Candidate, busy func(ctx context.Context, c Candidate) (bool, error)) {
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			cs[i].Busy, cs[i].Err = busy(pctx, cs[i])
			if cs[i].Err != nil {
				cs[i].Busy = true
			}
		}()
	}
	wg.Wait()
}

// Pick chooses k of cs to drain: idle replicas first, then the least recently started,
// then the highest number. It returns them with the reason each was chosen.
func Pick(cs []Candidate, k int, now time.Time) ([]Candidate, []string) {
	order := slices.Clone(cs)
	slices.SortStableFunc(order, func(a, b Candidate) int {
		if a.Busy != b.Busy {
			if a.Busy {
				return 1
			}
			return -1
		}
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return cmp.Compare(b.Number, a.Number)
	})
	k = min(k, len(order))
	reasons := make([]string, k)
	for i, c := range order[:k] {
		age := configs.FormatDuration(now.Sub(c.Started).Round(time.Second))
		switch {
		case c.Err != nil:
			reasons[i] = fmt.Sprintf("busy check failed (%v), so counted as busy; started %s ago", c.Err, age)
		case c.Busy:
			reasons[i] = fmt.Sprintf("busy (not enough idle replicas); started %s ago", age)
		default:
			reasons[i] = fmt.Sprintf("idle; started %s ago", age)
		}
	}
	return order[:k], reasons
}

// Outcome is how Wait ended.
type Outcome struct {
	State targets.DrainState
	// LastErr is the last failed busy probe, if the drain timed out on one.
	LastErr error
}

// Wait polls busy every poll until the replica reports idle (DrainStopped), timeout passes
// (DrainTimedOut), gone is closed (DrainGone) or back is closed (DrainTakenBack). waiting
// is called once, the first time the replica answers busy. A ctx that ends (the target is
// closing) ends the wait as DrainGone: what follows is the target's normal stop.
func Wait(ctx context.Context, busy func(context.Context) (bool, error), poll, timeout time.Duration, gone, back <-chan struct{}, waiting func()) Outcome {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// A deadline already passed (a drain resumed after a restart) still gets one probe.
	pt := probeTimeout
	if timeout > 0 {
		pt = min(pt, timeout)
	}
	var lastErr error
	told := false
	for {
		pctx, cancel := context.WithTimeout(ctx, pt)
		b, err := busy(pctx)
		cancel()
		lastErr = err
		if err == nil && !b {
			// Looked at again: back or gone may have happened while the probe ran.
			select {
			case <-back:
				return Outcome{State: targets.DrainTakenBack}
			case <-gone:
				return Outcome{State: targets.DrainGone}
			default:
			}
			return Outcome{State: targets.DrainStopped}
		}
		if !told {
			told = true
			waiting()
		}
		tm := time.NewTimer(poll)
		select {
		case <-tm.C:
		case <-deadline.C:
			tm.Stop()
			return Outcome{State: targets.DrainTimedOut, LastErr: lastErr}
		case <-gone:
			tm.Stop()
			return Outcome{State: targets.DrainGone}
		case <-back:
			tm.Stop()
			return Outcome{State: targets.DrainTakenBack}
		case <-ctx.Done():
			tm.Stop()
			return Outcome{State: targets.DrainGone}
		}
	}
}

// GetBusy asks url whether the replica is busy: a 2xx answer whose body is a JSON object
// with a boolean "busy" says so; any other 2xx answer means busy; any other status (404,
// 503...) means idle. No answer is an error (the caller counts it as busy).
func GetBusy(ctx context.Context, c *http.Client, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, nil
	}
	var v struct {
		Busy *bool `json:"busy"`
	}
	if json.Unmarshal(body, &v) == nil && v.Busy != nil {
		return *v.Busy, nil
	}
	return true, nil
}

// Post makes a quiet or resume call; any 2xx answer is success.
func Post(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

// ExitBusy reads a busy command's exit code: 0 busy, 1 idle; anything else (and a
// command that could not run) is an error, counted as busy.
func ExitBusy(code int, runErr error) (bool, error) {
	switch {
	case code == 0 && runErr == nil:
		return true, nil
	case code == 1:
		return false, nil
	case runErr != nil:
		return false, runErr
	}
	return false, fmt.Errorf("exit code %d (a busy command exits 0 for busy, 1 for idle)", code)
}

// keepEnded and keepEndedFor bound the ended drains a Book still shows.
const (
	keepEnded    = 32
	keepEndedFor = time.Hour
)

// Book keeps a target's drains for its status: those running and the recently ended.
type Book struct {
	mu   sync.Mutex
	next uint64
	list []targets.DrainInfo
}

// Start records a new drain and returns its ID.
func (b *Book) Start(replica, reason string, now time.Time) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.list = append(b.list, targets.DrainInfo{ID: b.next, Replica: replica, Reason: reason, State: targets.DrainQuiet, Since: now})
	b.prune(now)
	return b.next
}

// Set moves drain id to state; a state that is over sets Ended.
func (b *Book) Set(id uint64, state targets.DrainState, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.list {
		if d := &b.list[i]; d.ID == id && !d.State.Over() {
			d.State = state
			if state.Over() {
				d.Ended = now
			}
		}
	}
}

// List returns the drains, oldest first.
func (b *Book) List() []targets.DrainInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(time.Now())
	return slices.Clone(b.list)
}

// prune drops ended drains beyond keepEnded or older than keepEndedFor. b.mu is held.
func (b *Book) prune(now time.Time) {
	ended := 0
	for _, d := range b.list {
		if d.State.Over() {
			ended++
		}
	}
	b.list = slices.DeleteFunc(b.list, func(d targets.DrainInfo) bool {
		if !d.State.Over() {
			return false
		}
		if ended > keepEnded || now.Sub(d.Ended) > keepEndedFor {
			ended--
			return true
		}
		return false
	})
}

// Reach is how a target reaches one replica; Busy and Tell do the rest the same way for
// every target.
type Reach struct {
	Client *http.Client
	// URL is where the replica serves h (its port or base port, and path).
	URL func(ctx context.Context, h *HTTP) (string, error)
	// Run runs argv for the replica and returns its exit code; err when it did not run
	// to an exit.
	Run func(ctx context.Context, argv []string) (int, error)
	// Signal sends sig to the replica.
	Signal func(ctx context.Context, sig syscall.Signal) error
	// File reports whether path exists for the replica.
	File func(ctx context.Context, path string) (bool, error)
}

// Busy asks the replica through p whether it is working.
func (r Reach) Busy(ctx context.Context, p Probe) (bool, error) {
	switch {
	case p.HTTP != nil:
		url, err := r.URL(ctx, p.HTTP)
		if err != nil {
			return false, err
		}
		return GetBusy(ctx, r.Client, url)
	case p.Exec != nil:
		return ExitBusy(r.Run(ctx, p.Exec))
	}
	return r.File(ctx, p.File)
}

// Tell sends a quiet or resume: the signal sig when given, else the call (nil: nothing
// to do).
func (r Reach) Tell(ctx context.Context, sig string, call *Probe) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	switch {
	case sig != "":
		s, err := ParseSignal(sig)
		if err != nil {
			return err
		}
		if err := r.Signal(ctx, s); err != nil {
			return fmt.Errorf("sending %s: %w", SignalName(s), err)
		}
	case call != nil && call.HTTP != nil:
		url, err := r.URL(ctx, call.HTTP)
		if err != nil {
			return err
		}
		return Post(ctx, r.Client, url)
	case call != nil && call.Exec != nil:
		code, err := r.Run(ctx, call.Exec)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s: exit code %d", call.Exec[0], code)
		}
		return err
	}
	return nil
}

// Settle readies a new replica for a warm pool before it is frozen: it waits until the
// replica answers its busy probe at all (it has started up: a worker still loading has no
// one to answer), tells it to go quiet (so a paused member holds no job), and waits until
// it reports idle. It returns when the replica may be frozen, or an error when it does
// not get there before ctx ends (the caller bounds it). Without quiet the replica may take
// a job between the idle answer and the freeze; the docs say so.
func Settle(ctx context.Context, cfg *Config, r Reach) error {
	poll := min(cfg.PollOrDefault(), 500*time.Millisecond)
	probe := func() (bool, error) {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		return r.Busy(pctx, cfg.Busy)
	}
	wait := func(done func(busy bool, err error) bool) error {
		for {
			busy, err := probe()
			if done(busy, err) {
				return nil
			}
			select {
			case <-ctx.Done():
				if err != nil {
					return fmt.Errorf("%w (last busy probe: %v)", ctx.Err(), err)
				}
				return fmt.Errorf("%w (still busy)", ctx.Err())
			case <-time.After(poll):
			}
		}
	}
	if err := wait(func(_ bool, err error) bool { return err == nil }); err != nil {
		return fmt.Errorf("waiting for it to answer its busy probe: %w", err)
	}
	if err := r.Tell(ctx, cfg.QuietSignal, cfg.Quiet); err != nil {
		return fmt.Errorf("telling it to go quiet: %w", err)
	}
	if err := wait(func(busy bool, err error) bool { return err == nil && !busy }); err != nil {
		return fmt.Errorf("waiting for it to be idle: %w", err)
	}
	return nil
}

// Resumable reports whether replicas drained (or settled) with cfg can be told to take
// work again: they were never told to go quiet, or there is a way to resume them.
func (c *Config) Resumable() bool {
	quiet := c.QuietSignal != "" || c.Quiet != nil
	return !quiet || c.ResumeSignal != "" || c.Resume != nil
}
