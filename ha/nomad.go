package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/nomadclient"
)

// DefaultTTL is the lock TTL when the config gives none.
const DefaultTTL = 15 * time.Second

// lockDelay is how long Nomad keeps an expired lock blocked. Nomad's default (15s) guards
// holders that never notice they lost the lock; this one steps down on its own a full TTL
// before Nomad expires the lock (see nomadElector.lead), so a short delay is enough and
// keeps failover fast. Zero would mean "Nomad's default", hence one second.
const lockDelay = time.Second

// maxWait bounds the blocking query a standby uses to watch the lock. Any change to the
// lock variable (release, expiry, a new holder) wakes it at once; the bound only adds a
// retry now and then in case a change was missed.
const maxWait = time.Minute

type nomadElector struct {
	client *api.Client
	path   string
	ttl    time.Duration
	holder string
	log    *slog.Logger
	leader atomic.Bool
}

// NewNomad returns an Elector that holds leadership through a Nomad Variables lock at
// cfg.LockPath. Connection settings not in cfg come from NOMAD_ADDR, NOMAD_TOKEN, ... as
// for the nomad CLI. The token needs write access to the lock path's variable.
func NewNomad(cfg *configs.HANomad, logger *slog.Logger) (Elector, error) {
	path := strings.Trim(cfg.LockPath, " /")
	if path == "" {
		return nil, errors.New("ha: nomad: lock_path is empty")
	}
	ttl := cfg.TTL.D()
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < configs.MinLockTTL || ttl > configs.MaxLockTTL {
		// The config check reports this with its position; this guards other callers.
		return nil, fmt.Errorf("ha: nomad: ttl %s is outside what Nomad accepts (%s to %s)", configs.Duration(ttl), configs.Duration(configs.MinLockTTL), configs.Duration(configs.MaxLockTTL))
	}
	client, err := nomadclient.New(nomadclient.Options{
		Address: cfg.Address, Token: cfg.Token.Value(), Namespace: cfg.Namespace, Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &nomadElector{
		client: client,
		path:   path,
		ttl:    ttl,
		holder: fmt.Sprintf("%s:%d", host, os.Getpid()),
		log:    logger.With("lock_path", path),
	}, nil
}

func (e *nomadElector) IsLeader() bool { return e.leader.Load() }

func (e *nomadElector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	var index uint64 // the lock variable's index last seen; 0 reads without blocking
	backoff := newBackoff(time.Second, e.ttl)
	for ctx.Err() == nil {
		// Wait for the lock variable to change (released, expired, or first time round).
		_, meta, err := e.client.Variables().Peek(e.path, (&api.QueryOptions{WaitIndex: index, WaitTime: maxWait}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e.log.Warn("ha: cannot read the leader lock", "error", err)
			sleep(ctx, backoff.next())
			index = 0
			continue
		}
		index = meta.LastIndex

		sent := time.Now()
		lock, err := e.acquire(ctx)
		switch {
		case err == nil:
			backoff.reset()
			if released := e.lead(ctx, lock, sent, lead); !released {
				// Lost, not given up: read afresh rather than wait on a stale index.
				index = 0
			} else if ctx.Err() == nil {
				// lead returned by itself; give the others a chance before trying again.
				sleep(ctx, time.Second)
				index = 0
			}
		case isConflict(err):
			backoff.reset() // held by someone else: wait for the variable to change
		case ctx.Err() != nil:
		default:
			e.log.Warn("ha: cannot acquire the leader lock", "error", err)
			sleep(ctx, backoff.next())
			index = 0
		}
	}
	return nil
}

// acquire tries once to take the lock.
func (e *nomadElector) acquire(ctx context.Context) (*api.Variable, error) {
	v := &api.Variable{
		Path:  e.path,
		Items: api.VariableItems{"holder": e.holder, "since": time.Now().UTC().Format(time.RFC3339)},
		Lock:  &api.VariableLock{TTL: e.ttl.String(), LockDelay: lockDelay.String()},
	}
	out, _, err := e.client.Variables().AcquireLock(v, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if out == nil || out.LockID() == "" {
		return nil, errors.New("nomad granted the lock but returned no lock ID")
	}
	return &api.Variable{Path: e.path, Lock: &api.VariableLock{ID: out.LockID()}}, nil
}

// lead runs lead while renewing the lock. It cancels lead's context the moment the lock
// is lost: Nomad says it is no longer ours, or no renewal succeeded for a whole TTL (Nomad
// only expires the lock after twice the TTL, so by then nobody else can hold it yet). It
// reports whether the lock was given up (ctx ended, or lead returned) rather than lost.
//
// The lease is counted from when the acquire (then each renewal) request was sent, which
// is before Nomad started its timer, so this side always gives up first.
func (e *nomadElector) lead(ctx context.Context, lock *api.Variable, renewedAt time.Time, lead func(ctx context.Context)) (released bool) {
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.leader.Store(true)
	e.log.Info("ha: leadership acquired", "ttl", e.ttl)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()

	lose := func(why string, args ...any) {
		// Step down first, so nothing acts on leadership we no longer have.
		e.leader.Store(false)
		cancel()
		e.log.Warn("ha: leadership lost: "+why, args...)
		<-done
	}

	interval := e.ttl / 3
	tick := time.NewTicker(interval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Until(renewedAt.Add(e.ttl)))
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			e.leader.Store(false)
			<-done
			e.release(lock)
			return true
		case <-done:
			e.leader.Store(false)
			e.release(lock)
			return true
		case <-expiry.C:
			lose("no renewal succeeded within the ttl", "ttl", e.ttl)
			return false
		case <-tick.C:
			start := time.Now()
			rctx, rcancel := context.WithTimeout(ctx, interval)
			_, _, err := e.client.Variables().RenewLock(lock, (&api.WriteOptions{}).WithContext(rctx))
			rcancel()
			switch {
			case err == nil:
				renewedAt = start
				expiry.Reset(time.Until(renewedAt.Add(e.ttl)))
			case ctx.Err() != nil:
				// Stopping; the ctx.Done case releases.
			case isConflict(err) || nomadclient.IsNotFound(err):
				lose("the lock is no longer ours", "error", err)
				return false
			default:
				e.log.Warn("ha: cannot renew the leader lock; will retry", "error", err, "steps_down_in", time.Until(renewedAt.Add(e.ttl)).Round(time.Millisecond))
			}
		}
	}
}

// release gives the lock up so a standby takes over at once instead of after the TTL.
func (e *nomadElector) release(lock *api.Variable) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := e.client.Variables().ReleaseLock(lock, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		e.log.Warn("ha: cannot release the leader lock; a standby takes over when it expires", "error", err)
		return
	}
	e.log.Info("ha: leadership released")
}

func isConflict(err error) bool { return nomadclient.StatusCode(err) == http.StatusConflict }

// backoff grows from min to max, doubling.
type backoff struct{ min, max, cur time.Duration }

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
