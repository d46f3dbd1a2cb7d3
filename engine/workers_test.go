package engine

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWorkersBlockedJobsDoNotHoldUpOthers: with every base worker blocked, a new job still
// runs, on a worker started once it has waited workerStuck; jobs in a burst all run; stop
// ends the idle workers.
func TestWorkersBlockedJobsDoNotHoldUpOthers(t *testing.T) {
	before := runtime.NumGoroutine()
	w := newWorkers(2)
	release := make(chan struct{})
	var blocked sync.WaitGroup
	for range 2 {
		blocked.Add(1)
		w.run(func() { defer blocked.Done(); <-release })
	}
	ran := make(chan struct{})
	w.run(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a job behind two blocked workers did not run")
	}

	var burst sync.WaitGroup
	for range 1000 {
		burst.Add(1)
		w.run(burst.Done)
	}
	burst.Wait()
	close(release)
	blocked.Wait()

	w.mu.Lock()
	n := w.n
	w.mu.Unlock()
	if n > 50 {
		t.Errorf("%d workers after a burst of 1,000 quick jobs: the pool grew for jobs that did not block", n)
	}
	w.stop()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after stop, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	w.run(func() { close(done) }) // after stop: still runs
	<-done
}
