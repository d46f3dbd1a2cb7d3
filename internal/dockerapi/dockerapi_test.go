package dockerapi

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/shared"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		host, env, wantErr string
	}{
		{host: "unix:///var/run/docker.sock"},
		{host: "tcp://127.0.0.1:2375"},
		{env: "tcp://10.0.0.1:2376"},
		{host: "tcp://admin:s3cret@10.0.0.1:2376", wantErr: "docker: host tcp://admin:xxxxx@10.0.0.1:2376: credentials in the Docker host address are not supported"},
		{env: "tcp://admin:s3cret@10.0.0.1:2376", wantErr: "tcp://admin:xxxxx@10.0.0.1:2376"},
		{host: "tcp://s3cret@10.0.0.1:2376", wantErr: "tcp://xxxxx@10.0.0.1:2376"},
		{host: "ssh://deploy@build-1", wantErr: "docker: host ssh://xxxxx@build-1: ssh:// is not supported; forward the engine's socket"},
		{host: "bogus", wantErr: "docker: client for bogus"},
	} {
		t.Run(tc.host+tc.env, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.env)
			c, err := New(tc.host)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New(%q) error = %v, want %q", tc.host, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the password leaked: %v", err)
			}
		})
	}
}

func TestSharedDoesNoIO(t *testing.T) {
	// An address nothing listens on: building and closing must not touch it.
	set := shared.NewSet()
	a, b := Shared(set, "tcp://127.0.0.1:1"), Shared(set, "tcp://127.0.0.1:1")
	other := Shared(set, "")
	if set.Len() != 2 {
		t.Fatalf("%d clients for two engines", set.Len())
	}
	for _, c := range []*shared.Conn[*client.Client]{a, b, other} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSharedRetriesAfterAFailedOpen(t *testing.T) {
	// The host is read when the client is opened: a bad DOCKER_HOST fixed meanwhile is
	// picked up on the next use instead of failing forever.
	t.Setenv(client.EnvOverrideHost, "ssh://deploy@build-1")
	c := Shared(nil, "")
	defer c.Close()
	if _, err := c.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "ssh:// is not supported") {
		t.Fatalf("Get = %v, want the refusal", err)
	}
	t.Setenv(client.EnvOverrideHost, "unix:///var/run/docker.sock")
	cl, err := c.Get(context.Background())
	if err != nil {
		t.Fatalf("after DOCKER_HOST was fixed: %v", err)
	}
	if got := cl.DaemonHost(); got != "unix:///var/run/docker.sock" {
		t.Fatalf("client for %s", got)
	}
}

// fakeEvents plays one scripted stream per Events call: a connection error, or some
// messages and then a break.
type fakeEvents struct {
	streams []fakeStream
	calls   atomic.Int32
}

type fakeStream struct {
	connectErr error
	messages   int
}

func (f *fakeEvents) Events(ctx context.Context, _ client.EventsListOptions) client.EventsResult {
	i := int(f.calls.Add(1)) - 1
	msgs, errs := make(chan events.Message), make(chan error, 1)
	if i >= len(f.streams) {
		go func() { <-ctx.Done(); errs <- ctx.Err() }() // stays connected, quiet
		return client.EventsResult{Messages: msgs, Err: errs}
	}
	s := f.streams[i]
	if s.connectErr != nil {
		errs <- s.connectErr
		return client.EventsResult{Messages: msgs, Err: errs}
	}
	go func() {
		time.Sleep(300 * time.Millisecond) // connected for a while first
		for range s.messages {
			select {
			case msgs <- events.Message{}:
			case <-ctx.Done():
				return
			}
		}
		errs <- io.ErrUnexpectedEOF // the engine went away
	}()
	return client.EventsResult{Messages: msgs, Err: errs}
}

func TestWatch(t *testing.T) {
	down := errors.New("connection refused")
	f := &fakeEvents{streams: []fakeStream{
		{messages: 2},      // two events, then the engine restarts
		{connectErr: down}, // still down: no change reported for a failed attempt
		{connectErr: down},
		{messages: 0}, // back: one change for what was missed
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var changes atomic.Int32
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, f, client.Filters{}, func() { changes.Add(1) }, nil) }()
	deadline := time.Now().Add(20 * time.Second)
	for f.calls.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond) // the fifth stream is connected
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v, want nil when its context ends", err)
	}
	// 2 events + 1 after reconnecting (stream 4) + 1 after stream 4 broke (stream 5).
	if got := changes.Load(); got != 4 {
		t.Fatalf("%d changes reported, want 4", got)
	}
}
