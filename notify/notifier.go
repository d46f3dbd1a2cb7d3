// Package notify delivers events (a policy scaled, failed to, was paused; the config was
// reloaded) to the sinks of the `notify:` config: webhooks with a JSON body or a Slack
// message.
//
// Delivery never holds up the caller: Notify puts the event on each matching sink's
// bounded queue and returns. A goroutine per sink posts the events in order, retrying
// failures with exponential backoff a bounded number of times. An event that finds the
// queue full, runs out of retries, is refused by the receiver (4xx) or is still queued
// at shutdown is dropped, counted in autoscalerd_notifications_dropped_total{sink,reason}
// and logged (at most once a minute per sink and reason, with the count since).
package notify

import (
	"context"
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/plugin"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/prometheus/client_golang/prometheus"
)

// Why an event was dropped: the reason label of the dropped metric.
const (
	DropQueueFull = "queue_full"
	DropFailed    = "failed"   // retries exhausted
	DropRejected  = "rejected" // a 4xx or redirect: retrying would not help
	DropClosed    = "closed"   // still queued when the sink was stopped
)

var dropReasons = []string{DropQueueFull, DropFailed, DropRejected, DropClosed}

// Options configure a Notifier.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// PageURL is the status page's base URL, linked from every notification
	// (e.g. http://autoscaler.internal:9090/); "" leaves the link out.
	PageURL string
	// Host names this daemon in every notification, so that several daemons (HA) sending
	// to one channel can be told apart. Default: os.Hostname.
	Host string
	// Backoff is the wait before the first retry; it doubles per retry up to MaxBackoff.
	// Defaults: 1s and 30s.
	Backoff, MaxBackoff time.Duration
	// StopGrace is how long a sink removed by a reload may go on delivering what it
	// has queued. Default 30s.
	StopGrace time.Duration
}

// Notifier routes events to sinks. The zero value is not usable; call New. A nil
// *Notifier accepts and ignores events, so callers need no checks.
type Notifier struct {
	o       Options
	log     *slog.Logger
	dropped *prometheus.CounterVec
	sent    *prometheus.CounterVec

	mu       sync.RWMutex
	closed   bool
	daemon   []*sink
	policies map[string][]*sink
	wg       sync.WaitGroup
	base     context.Context
	cancel   context.CancelFunc
}

// New returns a Notifier without sinks; Apply gives it some.
func New(o Options) *Notifier {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 30 * time.Second
	}
	n := &Notifier{
		o:   o,
		log: o.Logger,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_notifications_dropped_total",
			Help: "Notifications not delivered, by sink and reason (queue_full, failed, rejected, closed).",
		}, []string{"sink", "reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_notifications_sent_total",
			Help: "Notifications delivered, by sink.",
		}, []string{"sink"}),
		policies: map[string][]*sink{},
	}
	// Not derived from a caller's context: the sinks live until Close, across reloads.
	n.base, n.cancel = context.WithCancel(context.Background())
	if o.Registerer != nil {
		o.Registerer.MustRegister(n.dropped, n.sent)
	}
	return n
}

// Apply makes cfg's sinks the active ones. A sink whose settings did not change keeps its
// queue and goroutine; a removed one delivers what it holds for StopGrace, then stops.
// It fails, changing nothing, when a sink cannot be built (a TLS file is unreadable).
func (n *Notifier) Apply(cfg *configs.Config) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("notify: notifier is closed")
	}
	old := map[string]*sink{}
	for _, s := range n.daemon {
		old[s.label] = s
	}
	for _, ss := range n.policies {
		for _, s := range ss {
			old[s.label] = s
		}
	}
	kept := map[string]bool{}
	var built []*sink
	build := func(label string, c *configs.Sink) (*sink, error) {
		if s, ok := old[label]; ok && s.same(c) {
			kept[label] = true
			return s, nil
		}
		s, err := n.newSink(label, c)
		if err != nil {
			return nil, fmt.Errorf("notify: sink %s: %w", label, err)
		}
		built = append(built, s)
		return s, nil
	}
	fail := func(err error) error {
		for _, s := range built {
			s.sender.close()
		}
		return err
	}
	var daemon []*sink
	for _, c := range cfg.Notify {
		s, err := build(c.Name, c)
		if err != nil {
			return fail(err)
		}
		daemon = append(daemon, s)
	}
	policies := map[string][]*sink{}
	for _, p := range cfg.Policies {
		for _, c := range p.Notify {
			s, err := build(p.Name+"/"+c.Name, c)
			if err != nil {
				return fail(err)
			}
			policies[p.Name] = append(policies[p.Name], s)
		}
	}
	for label, s := range old {
		if !kept[label] {
			s.removed = true
			n.stopLocked(s, n.o.StopGrace)
		}
	}
	for _, s := range built {
		n.startLocked(s)
	}
	n.daemon, n.policies = daemon, policies
	return nil
}

// Notify queues e for every sink that wants it and returns at once. It never blocks:
// an event that finds a queue full is dropped and counted.
func (n *Notifier) Notify(e Event) {
	if n == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	for _, s := range n.daemon {
		s.offer(e)
	}
	if e.Policy != "" {
		for _, s := range n.policies[e.Policy] {
			s.offer(e)
		}
	}
}

// Close stops accepting events and lets every sink deliver what it has queued until ctx
// ends; whatever is left then is dropped (reason closed). It returns once every sink's
// goroutine has finished.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, s := range n.daemon {
			n.stopLocked(s, 0)
		}
		for _, ss := range n.policies {
			for _, s := range ss {
				n.stopLocked(s, 0)
			}
		}
		n.daemon, n.policies = nil, nil
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
}

// sink is one configured destination: a queue and the goroutine that empties it.
type sink struct {
	label  string
	cfg    *configs.Sink
	sender *webhookSender
	queue  chan Event
	ctx    context.Context
	cancel context.CancelFunc
	n      *Notifier
	drops  dropLog
	// stopped is set under n.mu when the queue is closed, so no offer sends on it after.
	stopped bool
	// removed says a reload removed the sink, so its metric series go when it ends;
	// at shutdown they stay, for a last scrape.
	removed bool
}

func (n *Notifier) newSink(label string, c *configs.Sink) (*sink, error) {
	sender, err, ok := plugin.Build[senderDeps, *webhookSender](plugin.Sink, c.Kind, c.Config, senderDeps{page: n.o.PageURL, host: n.o.Host})
	switch {
	case !ok:
		return nil, fmt.Errorf("unknown sink kind %q", c.Kind)
	case err != nil:
		return nil, err
	}
	s := &sink{label: label, cfg: c, sender: sender, queue: make(chan Event, sender.cfg.QueueSize), n: n}
	s.ctx, s.cancel = context.WithCancel(n.base)
	return s, nil
}

// same reports whether c configures exactly this sink, so a reload can keep it.
func (s *sink) same(c *configs.Sink) bool {
	return s.cfg.Kind == c.Kind && slices.Equal(s.cfg.Events, c.Events) && reflect.DeepEqual(s.cfg.Config, c.Config)
}

func (n *Notifier) startLocked(s *sink) {
	n.sent.WithLabelValues(s.label)
	for _, r := range dropReasons {
		n.dropped.WithLabelValues(s.label, r)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		s.run()
	}()
}

// stopLocked closes s's queue; its goroutine delivers what is queued and ends, or is
// cancelled after grace (when grace > 0; Close cancels at its own deadline).
func (n *Notifier) stopLocked(s *sink, grace time.Duration) {
	if s.stopped {
		return
	}
	s.stopped = true
	close(s.queue)
	if grace > 0 {
		t := time.AfterFunc(grace, s.cancel)
		context.AfterFunc(s.ctx, func() { t.Stop() })
	}
}

// offer queues e if the sink wants it. Called under n.mu (read), which orders it
// before any close of the queue.
func (s *sink) offer(e Event) {
	if s.stopped || !s.cfg.Wants(e.Kind) {
		return
	}
	select {
	case s.queue <- e:
	default:
		s.drop(e, DropQueueFull, nil)
	}
}

func (s *sink) run() {
	defer s.cancel()
	defer s.sender.close()
	defer s.forgetMetrics()
	for e := range s.queue {
		if s.ctx.Err() != nil {
			s.drop(e, DropClosed, nil)
			continue
		}
		s.deliver(e)
	}
	s.drops.flush(s.n.log, s.label)
}

// forgetMetrics removes the sink's series once it is gone for good, so reloads that
// rename sinks do not grow /metrics without bound. A sink replaced under the same label
// (changed settings) re-creates them when it starts.
func (s *sink) forgetMetrics() {
	s.n.mu.RLock()
	defer s.n.mu.RUnlock()
	if !s.removed || s.n.active(s.label) {
		return
	}
	s.n.sent.DeleteLabelValues(s.label)
	for _, r := range dropReasons {
		s.n.dropped.DeleteLabelValues(s.label, r)
	}
}

// active reports whether a running sink has this label. Called under n.mu.
func (n *Notifier) active(label string) bool {
	for _, s := range n.daemon {
		if s.label == label {
			return true
		}
	}
	for _, ss := range n.policies {
		for _, s := range ss {
			if s.label == label {
				return true
			}
		}
	}
	return false
}

// deliver posts e, retrying with exponential backoff (and jitter, so sinks that failed
// together do not retry in lockstep).
func (s *sink) deliver(e Event) {
	wait := s.n.o.Backoff
	for attempt := 0; ; attempt++ {
		err := s.sender.send(s.ctx, e)
		if err == nil {
			s.n.sent.WithLabelValues(s.label).Inc()
			return
		}
		switch {
		case s.ctx.Err() != nil:
			s.drop(e, DropClosed, err)
			return
		case !isRetryable(err):
			s.drop(e, DropRejected, err)
			return
		case attempt >= s.sender.cfg.Retries:
			s.drop(e, DropFailed, fmt.Errorf("%w (after %d attempts)", err, attempt+1))
			return
		}
		s.n.log.Debug("notification failed; retrying", "sink", s.label, "event", e.Kind, "attempt", attempt+1, "err", err)
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.drop(e, DropClosed, err)
			return
		}
		wait = min(2*wait, s.n.o.MaxBackoff)
	}
}

func (s *sink) drop(e Event, reason string, err error) {
	s.n.dropped.WithLabelValues(s.label, reason).Inc()
	s.drops.add(s.n.log, s.label, reason, e, err)
}

// dropLogEvery is the least time between two log lines about drops of one sink and reason.
const dropLogEvery = time.Minute

// dropLog rate-limits the log lines about dropped events: a dead sink on a busy daemon
// would otherwise write one per event.
type dropLog struct {
	mu     sync.Mutex
	last   map[string]time.Time
	since  map[string]int // drops not logged yet, by reason
	lastEr map[string]string
}

func (l *dropLog) add(log *slog.Logger, label, reason string, e Event, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.since, l.lastEr = map[string]time.Time{}, map[string]int{}, map[string]string{}
	}
	l.since[reason]++
	if err != nil {
		l.lastEr[reason] = err.Error()
	}
	now := time.Now()
	if t, ok := l.last[reason]; ok && now.Sub(t) < dropLogEvery {
		return
	}
	l.last[reason] = now
	log.Warn("notification dropped", "sink", label, "reason", reason, "event", e.Kind, "policy", e.Policy, "dropped", l.since[reason], "err", l.lastEr[reason])
	l.since[reason] = 0
}

// flush logs the drops the rate limit held back, when the sink stops.
func (l *dropLog) flush(log *slog.Logger, label string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, reason := range dropReasons {
		if n := l.since[reason]; n > 0 {
			log.Warn("notifications dropped", "sink", label, "reason", reason, "dropped", n, "err", l.lastEr[reason])
		}
	}
}
