// Package dockerapi opens Engine API clients for the Docker targets and sources (one per
// engine, shared through internal/shared), and follows the engine's event stream for them.
package dockerapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/shared"
)

// New returns a client for host ("" = DOCKER_HOST or the default socket). It does no
// I/O: the API version is negotiated on the first request, so an engine that is down
// now (or an old engine, API 1.40+) is fine.
func New(host string) (*client.Client, error) {
	if host == "" {
		host = os.Getenv(client.EnvOverrideHost)
	}
	if strings.HasPrefix(host, "ssh://") {
		// The docker CLI runs `ssh ... docker system dial-stdio` for these; the API
		// client cannot.
		return nil, fmt.Errorf("docker: host %s: ssh:// is not supported; forward the engine's socket (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST) and use unix:///tmp/docker.sock, or tcp:// with TLS", Describe(host))
	}
	// The Engine API client drops user info from tcp:// hosts, so a password there would
	// be sent nowhere, yet printed in every connection error. Refuse it, redacted.
	if u, err := url.Parse(host); err == nil && u.User != nil {
		return nil, fmt.Errorf("docker: host %s: credentials in the Docker host address are not supported (use TLS client certificates, DOCKER_CERT_PATH)", Describe(host))
	}
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client for %s: %w", Describe(host), err)
	}
	return c, nil
}

// Describe names the engine for error messages, without any password in it.
func Describe(host string) string {
	if host == "" {
		return "DOCKER_HOST or the default socket"
	}
	if u, err := url.Parse(host); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a lone user part may well be a token
		}
		return u.String()
	}
	return host
}

// EventsClient is the part of the Engine API that Watch uses.
type EventsClient interface {
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}

// Watch follows the engine's events matching filters and calls changed for each one
// (changed must not block; the engine coalesces). When the stream breaks (engine restart)
// it reconnects with capped backoff and calls changed once it is back, because events were
// missed meanwhile. It returns only when ctx ends.
func Watch(ctx context.Context, c EventsClient, filters client.Filters, changed func(), log *slog.Logger) error {
	// A small cap: a reconnect attempt is one cheap request, and after an engine restart
	// the outside changes should be seen within seconds.
	const minBackoff, maxBackoff = 500 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	missed := false
	for {
		res := c.Events(ctx, client.EventsListOptions{Filters: filters})
		// Events returns before a failed request has reported its error, so a stream
		// counts as connected once it has stayed up briefly (or delivered an event).
		var err error
		gotEvent := false
		select {
		case err = <-res.Err:
		case <-res.Messages:
			gotEvent = true
		case <-time.After(250 * time.Millisecond):
		}
		if err == nil {
			if missed || gotEvent {
				changed()
			}
			connected := time.Now()
			err = follow(ctx, res, changed)
			if time.Since(connected) > maxBackoff {
				backoff = minBackoff
			}
		}
		missed = true
		if ctx.Err() != nil {
			return nil
		}
		if log != nil {
			log.Debug("docker events stream ended; reconnecting", "err", err, "backoff", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func follow(ctx context.Context, res client.EventsResult, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-res.Err:
			return err
		case _, ok := <-res.Messages:
			if !ok {
				return nil
			}
			changed()
		}
	}
}

// Shared returns a hold on the client for host ("" = DOCKER_HOST or the default socket),
// opened on first use and shared in set with every target and source that talks to the
// same engine. Building it does no I/O (`autoscalerd validate` touches nothing), and a
// host the client refuses is reported where it is used, and tried again next time.
func Shared(set *shared.Set, host string) *shared.Conn[*client.Client] {
	return shared.New(set, shared.Spec[*client.Client]{
		Key:   "docker:" + Describe(host), // keys are printable; New refuses credentials anyway
		Open:  func(context.Context) (*client.Client, error) { return New(host) },
		Close: (*client.Client).Close,
	})
}
