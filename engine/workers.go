package engine

import (
	"runtime"
	"sync"
	"time"
)

const (
	// workerIdle is how long a worker waits for its next job before it ends.
	workerIdle = 10 * time.Second
	// workerStuck is how long a job may wait in the queue before the pool starts one more
	// worker for it: the workers are blocked (a slow target, a source that ignores its
	// timeout), not merely busy.
	workerStuck = 20 * time.Millisecond
)

// The pools' base sizes: ticks are mostly CPU (the decision), a tick's reads mostly wait.
var (
	tickWorkers = 2 * runtime.GOMAXPROCS(0)
	readWorkers = 4 * runtime.GOMAXPROCS(0)
)

// workers runs the engine's short jobs, the policies' ticks or their queries' reads, on a
// few goroutines that outlive one job. A goroutine per job was most of the daemon's cost
// with thousands of policies: every tick and read began on a fresh stack, grew it (a copy
// of the whole stack each time) down the decision's call chain, then threw it away, and
// the policies due on the same tick slot (hundreds at 10,000 policies) all did so at
// once. A worker's stack stays grown between jobs, and a slot's ticks run a few at a time.
//
// Up to base workers start as jobs come; beyond that a job waits in a queue (first in,
// first out), and only when the job at its head has waited workerStuck does another worker
// start. So a burst of quick jobs is taken by the workers there are, while jobs that block
// grow the pool as far as they need: one policy's slow tick never holds up another's for
// more than workerStuck. Workers idle for workerIdle end; stop ends the idle ones at once
// and the busy ones after their job.
type workers struct {
	base int

	mu    sync.Mutex
	n     int       // running workers
	idle  []*worker // waiting for a job, the most recent last
	queue []queued  // waiting for a worker, oldest first
	head  int       // queue[head] is the oldest
	grow  *time.Timer
	armed bool // grow is set for the head's workerStuck
	quit  bool
}

type worker struct {
	jobs chan func() // one job at a time, from whoever took the worker off the idle list
}

type queued struct {
	job func()
	at  time.Time
}

func newWorkers(base int) *workers {
	w := &workers{base: base}
	w.grow = time.AfterFunc(time.Hour, w.unstick)
	w.grow.Stop()
	return w
}

// run starts job on a worker, at once or once one is free. It never blocks.
func (w *workers) run(job func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.placeLocked(job, time.Now())
}

// runAll starts jobs as run does, in order, taking the lock once.
func (w *workers) runAll(jobs []func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, job := range jobs {
		w.placeLocked(job, now)
	}
}

// placeLocked gives job to an idle worker (its channel has room: a worker on the idle list
// holds no job), to a new one while there are fewer than base, or to the queue.
func (w *workers) placeLocked(job func(), now time.Time) {
	if k := len(w.idle); k > 0 {
		wk := w.idle[k-1]
		w.idle[k-1] = nil
		w.idle = w.idle[:k-1]
		wk.jobs <- job
		return
	}
	if w.n < w.base || w.quit {
		w.n++
		go w.work(job)
		return
	}
	w.queue = append(w.queue, queued{job, now})
	if !w.armed {
		w.armed = true
		w.grow.Reset(workerStuck)
	}
}

// popLocked takes the oldest queued job, if any.
func (w *workers) popLocked() (func(), bool) {
	if w.head == len(w.queue) {
		return nil, false
	}
	q := w.queue[w.head]
	w.queue[w.head] = queued{}
	w.head++
	if w.head == len(w.queue) { // empty: reuse the backing array from its start
		w.queue, w.head = w.queue[:0], 0
	}
	return q.job, true
}

// unstick starts a worker for the head of the queue if it has waited workerStuck, and
// re-arms itself for the next job's turn.
func (w *workers) unstick() {
	w.mu.Lock()
	w.armed = false
	if w.head == len(w.queue) {
		w.mu.Unlock()
		return
	}
	if wait := time.Since(w.queue[w.head].at); wait < workerStuck {
		w.armed = true
		w.grow.Reset(workerStuck - wait)
		w.mu.Unlock()
		return
	}
	job, _ := w.popLocked()
	w.n++
	if w.head < len(w.queue) {
		w.armed = true
		w.grow.Reset(workerStuck)
	}
	w.mu.Unlock()
	go w.work(job)
}

func (w *workers) work(job func()) {
	me := &worker{jobs: make(chan func(), 1)}
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		job()
		w.mu.Lock()
		next, ok := w.popLocked()
		if ok {
			w.mu.Unlock()
			job = next
			continue
		}
		if w.quit {
			w.n--
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, me)
		w.mu.Unlock()
		idle.Reset(workerIdle)
		select {
		case job = <-me.jobs: // nil when stop closed it
		case <-idle.C:
			job = w.leave(me)
		}
		if job == nil {
			return
		}
	}
}

// leave takes an idle worker off the pool, unless it was handed a job in the meantime,
// which it returns.
func (w *workers) leave(me *worker) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, wk := range w.idle {
		if wk == me {
			w.idle = append(w.idle[:i], w.idle[i+1:]...)
			w.n--
			return nil
		}
	}
	return <-me.jobs // taken off the list by run (its send is on its way) or by stop (closed)
}

// stop ends the idle workers; a busy one ends after its job, and jobs run after stop get
// a goroutine each. The engine waits for its ticks itself; a read it abandoned (a source
// that never returns) keeps its worker until the read returns, as it would keep a
// goroutine of its own.
func (w *workers) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.quit = true
	for _, wk := range w.idle {
		close(wk.jobs)
	}
	w.n -= len(w.idle)
	w.idle = nil
	for {
		job, ok := w.popLocked()
		if !ok {
			break
		}
		w.n++
		go w.work(job)
	}
}
