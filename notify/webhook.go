package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/plugin"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	httpsrc "github.com/autoscalerd/autoscalerd/sources/http"
)

// Webhook is the `webhook` sink kind: one POST per event to URL, with a JSON body (format
// json) or a Slack incoming-webhook message (format slack).
type Webhook struct {
	// URL is a Secret because an incoming webhook's URL is its credential (Slack's carries
	// the token in the path); it appears nowhere but in the request.
	URL          configs.Secret `yaml:"url" required:"true"`
	Format       string         `yaml:"format"`
	httpsrc.Auth `yaml:",inline"`
	TLS          configs.TLS      `yaml:"tls"`
	Timeout      configs.Duration `yaml:"timeout"`
	Retries      int              `yaml:"retries"`
	QueueSize    int              `yaml:"queue_size"`

	host string // for the default sink name
}

// Webhook defaults: an attempt gets 5s; a failed event is tried 3 more times (after 1s,
// 2s, 4s); 100 events wait per sink.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultRetries   = 3
	DefaultQueueSize = 100
	maxRetries       = 10
	maxQueueSize     = 10000
	// maxResponse is how much of a response is read, so the connection can be reused.
	maxResponse = 4 << 10
)

// The body formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// senderDeps is what building a sink needs besides its config.
type senderDeps struct {
	page, host string
}

func init() {
	plugin.Register(plugin.Sink, "webhook", "",
		func() *Webhook {
			return &Webhook{Format: FormatJSON, Timeout: configs.Duration(DefaultTimeout), Retries: DefaultRetries, QueueSize: DefaultQueueSize}
		},
		func(w *Webhook, d senderDeps) (*webhookSender, error) { return newWebhookSender(w, d.page, d.host) })
}

// SinkName implements configs.SinkNamer: the host, which is not secret (the path may be).
func (w *Webhook) SinkName() string { return w.host }

// CheckConfig implements configs.Checker. Messages never quote the URL.
func (w *Webhook) CheckConfig(c *configs.Check) {
	if c.Has("url") && w.URL.Offline() {
		// A placeholder for a variable validate does not have: judge nothing, but take
		// the host if the file wrote it out.
		if u, err := url.Parse(w.URL.Value()); err == nil && u.Host != "" {
			w.host = u.Hostname()
		}
	} else if c.Has("url") {
		u, err := url.Parse(w.URL.Value())
		switch {
		case err != nil:
			c.Errorf("url", "is not a valid URL")
		case u.Scheme == "":
			c.Errorf("url", "is not an http:// or https:// URL")
		case u.Scheme != "http" && u.Scheme != "https":
			c.Errorf("url", "want an http:// or https:// URL, not %q", u.Scheme+":")
		case u.Host == "":
			c.Errorf("url", "has no host")
		default:
			w.host = u.Hostname()
		}
	}
	switch w.Format {
	case FormatJSON, FormatSlack:
	default:
		c.Errorf("format", "%q is not a webhook format (use json or slack)", w.Format)
	}
	w.Auth.CheckConfig(c)
	if c.Has("timeout") && w.Timeout <= 0 {
		c.Errorf("timeout", "must be positive (e.g. 5s)")
	}
	if c.Has("retries") && (w.Retries < 0 || w.Retries > maxRetries) {
		c.Errorf("retries", "%d is outside 0 to %d", w.Retries, maxRetries)
	}
	if c.Has("queue_size") && (w.QueueSize < 1 || w.QueueSize > maxQueueSize) {
		c.Errorf("queue_size", "%d is outside 1 to %d", w.QueueSize, maxQueueSize)
	}
}

// webhookSender posts events for one sink.
type webhookSender struct {
	cfg     *Webhook
	client  *http.Client
	page    string
	host    string
	secrets []string
}

func newWebhookSender(cfg *Webhook, page, host string) (*webhookSender, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if !cfg.TLS.IsZero() {
		tc, err := cfg.TLS.Client()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	client := &http.Client{
		Transport: tr,
		// A redirected POST turns into a GET in net/http; a webhook that moved is a
		// configuration to fix, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	secrets := append([]string{cfg.URL.Value()}, cfg.Auth.Secrets()...)
	if u, err := url.Parse(cfg.URL.Value()); err == nil {
		// The path and query alone are the credential of most incoming webhooks; short
		// ones ("/", "/hook") are not, and scrubbing them would garble every message.
		for _, part := range []string{u.Path, u.RawQuery} {
			if len(part) >= 12 {
				secrets = append(secrets, part)
			}
		}
	}
	return &webhookSender{cfg: cfg, client: client, page: page, host: host, secrets: secrets}, nil
}

// retryable marks a failure worth another attempt: the network, a timeout, 5xx, 429.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// isRetryable reports whether another attempt may succeed.
func isRetryable(err error) bool {
	var r *retryable
	return errors.As(err, &r)
}

// send makes one attempt. The error never holds the URL or a credential.
func (s *webhookSender) send(ctx context.Context, e Event) error {
	var body []byte
	var err error
	if s.cfg.Format == FormatSlack {
		body, err = slackBody(e, s.page, s.host)
	} else {
		body, err = jsonBody(e, s.page, s.host)
	}
	if err != nil {
		return fmt.Errorf("encoding the event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL.Value(), bytes.NewReader(body))
	if err != nil {
		return errors.New("building the request failed") // the error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "autoscalerd")
	s.cfg.Auth.Apply(req)
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return &retryable{fmt.Errorf("POST: %w", sources.Redact(err, s.secrets...))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return &retryable{fmt.Errorf("POST: HTTP %s", resp.Status)}
	case code >= 300 && code < 400:
		return fmt.Errorf("POST: HTTP %s (redirects are not followed; point url at the final address)", resp.Status)
	default:
		return fmt.Errorf("POST: HTTP %s (not retried)", resp.Status)
	}
}

func (s *webhookSender) close() { s.client.CloseIdleConnections() }
