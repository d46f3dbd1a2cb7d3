package process

import (
	"errors"
	"runtime"
)

// errClosed is returned by a target, or its spawner, after Close.
var errClosed = errors.New("target closed")

// spawner starts children from one goroutine locked to its OS thread for the target's
// whole life.
//
// Why: Linux delivers a child's parent-death signal (Pdeathsig) when the *thread* that
// forked it exits, not the process. Go may end an OS thread whenever a goroutine that
// locked it returns, so a child forked from some arbitrary goroutine could be SIGKILLed
// at a random moment. Forking only here pins every child to a thread that lives exactly
// as long as the target: Close stops all children first and only then lets this goroutine
// return (which ends its thread, since it never unlocks). If the daemon dies, every thread
// dies with it, and so do the children.
type spawner struct {
	reqs chan func()
	quit chan struct{}
	done chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	// Never unlocked on purpose: see the type's comment.
	defer close(s.done)
	for {
		select {
		case f := <-s.reqs:
			f()
		case <-s.quit:
			return
		}
	}
}

// do runs start on the spawner's thread and returns its error.
func (s *spawner) do(start func() error) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- start() }:
		return <-errc
	case <-s.done:
		return errClosed
	}
}

// stop ends the spawner and its thread. Call it only when no child is left.
func (s *spawner) stop() {
	close(s.quit)
	<-s.done
}
