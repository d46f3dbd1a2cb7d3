package engine

import (
	"container/heap"
	"sync"
	"time"
)

// alarms is one timer for every policy's next tick. Each policy used to have a runtime
// timer of its own (time.AfterFunc), whose every firing started a goroutine to hand the
// tick to a worker: with 10,000 policies at 1 s, 10,000 timer firings and goroutines a
// second. Ticks fall on a grid of tickSlot, so the policies due on a slot are due at the
// same instant: they share a bucket (alarms due within the same millisecond), one firing
// hands the whole bucket to the tick workers at once, and the timer is armed for the next
// bucket. Setting, moving and cancelling an alarm is a map lookup and a swap in its
// bucket's list; only the buckets (a few dozen) are ordered.
type alarms struct {
	work *workers

	mu      sync.Mutex
	buckets map[int64]*bucket // by millisecond
	order   bucketHeap        // the buckets by time; an emptied one stays until popped
	timer   *time.Timer
	at      time.Time // what timer is armed for; zero when it is not
}

// bucket is the alarms due within one millisecond; it goes off at the latest of them.
type bucket struct {
	ms   int64
	at   time.Time
	list []*alarm
}

// alarm is one policy's place in alarms.
type alarm struct {
	at   time.Time
	b    *bucket // nil when not set
	idx  int     // in b.list
	fire func()
}

func newAlarms(work *workers) *alarms {
	a := &alarms{work: work, buckets: map[int64]*bucket{}}
	a.timer = time.AfterFunc(time.Hour, a.fire)
	a.timer.Stop()
	return a
}

func newAlarm(fire func()) *alarm { return &alarm{fire: fire} }

// set makes x go off at at (replacing when it was set for before).
func (a *alarms) set(x *alarm, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.removeLocked(x)
	ms := (at.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	b := a.buckets[ms]
	if b == nil {
		b = &bucket{ms: ms, at: at}
		a.buckets[ms] = b
		heap.Push(&a.order, b)
	} else if at.After(b.at) {
		b.at = at // never before any of its alarms; the order is by ms, which covers them all
	}
	x.at, x.b, x.idx = at, b, len(b.list)
	b.list = append(b.list, x)
	a.armLocked()
}

// cancel takes x off, if it is set.
func (a *alarms) cancel(x *alarm) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.removeLocked(x)
}

func (a *alarms) removeLocked(x *alarm) {
	b := x.b
	if b == nil {
		return
	}
	last := len(b.list) - 1
	b.list[x.idx] = b.list[last]
	b.list[x.idx].idx = x.idx
	b.list[last] = nil
	b.list = b.list[:last]
	x.b = nil
	if len(b.list) == 0 && a.buckets[b.ms] == b {
		delete(a.buckets, b.ms) // its place in order is dropped when it comes up
	}
}

// armLocked arms the timer for the earliest bucket, unless it is armed for that already
// or sooner (a firing with nothing due re-arms it).
func (a *alarms) armLocked() {
	for len(a.order) > 0 && a.buckets[a.order[0].ms] != a.order[0] {
		heap.Pop(&a.order) // emptied
	}
	if len(a.order) == 0 {
		return
	}
	next := a.order[0].at
	if !a.at.IsZero() && !a.at.After(next) {
		return
	}
	a.at = next
	a.timer.Reset(time.Until(next))
}

// fire hands every bucket that is due to the tick workers, and arms the timer for the next.
func (a *alarms) fire() {
	a.mu.Lock()
	now := time.Now()
	a.at = time.Time{}
	var jobs []func()
	for len(a.order) > 0 && !a.order[0].at.After(now) {
		b := heap.Pop(&a.order).(*bucket)
		if a.buckets[b.ms] != b {
			continue // emptied
		}
		delete(a.buckets, b.ms)
		for _, x := range b.list {
			x.b = nil
			jobs = append(jobs, x.fire)
		}
	}
	a.armLocked()
	a.mu.Unlock()
	a.work.runAll(jobs)
}

// stop disarms the timer; alarms set afterwards arm it again.
func (a *alarms) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timer.Stop()
	a.at = time.Time{}
}

// bucketHeap orders buckets by time (container/heap).
type bucketHeap []*bucket

func (h bucketHeap) Len() int           { return len(h) }
func (h bucketHeap) Less(i, j int) bool { return h[i].ms < h[j].ms }
func (h bucketHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *bucketHeap) Push(x any)        { *h = append(*h, x.(*bucket)) }
func (h *bucketHeap) Pop() any {
	old := *h
	n := len(old)
	b := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return b
}
