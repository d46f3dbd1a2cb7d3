package httpsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

// MaxBody caps how much of a response is read. A metrics endpoint answers in kilobytes;
// a misconfigured URL pointing at a file server must not fill the daemon's memory.
const MaxBody = 10 << 20

// minScrub is the length of the shortest value scrubbed from messages as a credential.
const minScrub = 4

// snippetLen is how much of an unexpected response body an error message quotes.
const snippetLen = 200

// Endpoint is one HTTP request, sent anew on every evaluation. The http kind decodes it
// from the file; kinds built on an HTTP API (hatchet) fill it in themselves.
type Endpoint struct {
	URL    string `yaml:"url" required:"true"`
	Method string `yaml:"method"`
	Body   string `yaml:"body"`
	Auth   `yaml:",inline"`
	TLS    configs.TLS `yaml:"tls"`
}

// methods are the methods a query may use. HEAD has no body to read a value from, and the
// rest change things on the server, which a query must never do.
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch}

// CheckConfig implements configs.Checker.
func (e *Endpoint) CheckConfig(c *configs.Check) {
	if c.Has("url") {
		if err := CheckURL(e.URL); err != nil {
			c.Errorf("url", "%v", err)
		}
	}
	e.Method = strings.ToUpper(e.Method) // HTTP methods are case-sensitive; operators' YAML is not
	known := false
	for _, m := range methods {
		known = known || e.Method == m
	}
	if !known {
		c.Errorf("method", "%q is not a method a query can use (use %s)", e.Method, strings.Join(methods, ", "))
	}
	e.Auth.CheckConfig(c)
}

// CheckURL accepts absolute http(s) URLs. Its messages never quote the URL unredacted, so
// a config check can show them.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, credentials included
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: want an http:// or https:// URL", RedactURL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("%s: no host", RedactURL(raw))
	}
	return nil
}

// Client sends one Endpoint's request. It owns its connection pool (reused between
// evaluations) and builds it on first use, so constructing a Client does no I/O.
type Client struct {
	ep      Endpoint
	log     *slog.Logger
	url     string   // redacted, for messages
	secrets []string // scrubbed from quoted responses, longest first
	conn    *shared.Conn[*http.Client]
}

// NewClient returns a client for ep. A nil logger discards.
func NewClient(ep Endpoint, log *slog.Logger) *Client {
	if ep.Method == "" {
		ep.Method = http.MethodGet
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Values shorter than minScrub are not credentials ("1", "on"), and replacing them
	// would garble every message.
	secrets := slices.DeleteFunc(append(urlSecrets(ep.URL), ep.Auth.Secrets()...), func(s string) bool { return len(s) < minScrub })
	// Longest first: sources.RedactString replaces in order, and one secret may contain
	// another, which would otherwise leave the longer one's remainder in the text.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	c := &Client{ep: ep, log: log, url: RedactURL(ep.URL), secrets: secrets}
	// The client is this endpoint's own (its credentials are), made on first use.
	c.conn = shared.New(nil, shared.Spec[*http.Client]{
		Open:  func(context.Context) (*http.Client, error) { return c.client() },
		Close: func(hc *http.Client) error { hc.CloseIdleConnections(); return nil },
	})
	return c
}

// URL is the endpoint's URL with credentials removed, for messages.
func (c *Client) URL() string { return c.url }

// Scrub removes the client's credentials from text, for callers that quote a response.
func (c *Client) Scrub(text string) string { return sources.RedactString(text, c.secrets...) }

// StatusError is a response whose status is not 2xx.
type StatusError struct {
	Method string
	URL    string // redacted
	Code   int
	Status string // "401 Unauthorized"
	Body   string // the first bytes, credentials removed
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// FetchJSON sends the request and returns the body of a 2xx JSON response. Every error
// names the method and the redacted URL. A non-2xx status is a *StatusError quoting the
// start of the body; a body that is not valid JSON is an error quoting its start and the
// Content-Type the server claimed. Quotes have the client's credentials removed.
func (c *Client) FetchJSON(ctx context.Context) ([]byte, error) {
	body, ctype, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if !validJSON(body) {
		what := "response"
		if ctype != "" {
			what += " (Content-Type " + ctype + ")"
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil, fmt.Errorf("%s %s: %s is empty, not JSON", c.ep.Method, c.url, what)
		}
		return nil, fmt.Errorf("%s %s: %s is not valid JSON: %s", c.ep.Method, c.url, what, c.snippet(body))
	}
	return body, nil
}

func (c *Client) fetch(ctx context.Context) ([]byte, string, error) {
	hc, err := c.conn.Get(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", c.ep.Method, c.url, err)
	}
	req, err := c.request(ctx)
	if err != nil {
		return nil, "", err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error quotes the full URL (query credentials included): keep only its cause,
		// and scrub that too, in case a proxy or a redirect put a credential in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", sources.Redact(fmt.Errorf("%s %s: %w", c.ep.Method, c.url, err), c.secrets...)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: reading the response: %w", c.ep.Method, c.url, err)
	}
	c.log.Debug("http request", "method", c.ep.Method, "url", c.url, "status", resp.StatusCode,
		"bytes", len(body), "took", time.Since(start).Round(time.Millisecond))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", &StatusError{Method: c.ep.Method, URL: c.url, Code: resp.StatusCode, Status: resp.Status, Body: c.snippet(body)}
	}
	if len(body) > MaxBody {
		return nil, "", fmt.Errorf("%s %s: response is larger than %d MiB; point the query at an endpoint that returns less", c.ep.Method, c.url, MaxBody>>20)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

func (c *Client) request(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if c.ep.Body != "" {
		body = strings.NewReader(c.ep.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.ep.Method, c.ep.URL, body)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", c.ep.Method, c.url, err)
	}
	req.Header.Set("User-Agent", "autoscalerd")
	req.Header.Set("Accept", "application/json")
	if c.ep.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c.ep.Auth.Apply(req)
	return req, nil
}

// client builds the transport, on first use: reading TLS files is I/O, which construction
// must not do. A failure (a missing CA file) is retried on the next evaluation.
func (c *Client) client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone() // keeps HTTPS_PROXY and sane dial timeouts
	tr.MaxIdleConnsPerHost = 2                            // one request per evaluation; keep a spare
	tr.IdleConnTimeout = 5 * time.Minute                  // outlive long evaluation intervals
	tr.ResponseHeaderTimeout = 0                          // the query's timeout (ctx) governs
	if !c.ep.TLS.IsZero() {
		cfg, err := c.ep.TLS.Client()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, CheckRedirect: sameOrigin}, nil
}

// sameOrigin follows redirects only within the original host, and never from https to
// http. Go drops Authorization on a redirect to another host but forwards every other
// header, and an API key in X-Api-Key must not travel to wherever a redirect points.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	switch {
	case len(via) >= 10:
		return errors.New("stopped after 10 redirects")
	case req.URL.Host != first.Host:
		return fmt.Errorf("redirected to another host, %s; set url to the address that answers", RedactURL(req.URL.String()))
	case first.Scheme == "https" && req.URL.Scheme != "https":
		return fmt.Errorf("redirected from https to %s; refusing to send credentials unencrypted", RedactURL(req.URL.String()))
	}
	return nil
}

// Close drops the idle connections.
func (c *Client) Close() error { return c.conn.Close() }

// snippet quotes the start of a body on one line, credentials removed. The whole body is
// scrubbed before it is cut, so a secret straddling the cut cannot leak half of itself.
func (c *Client) snippet(body []byte) string {
	s := c.Scrub(string(body))
	if len(s) > snippetLen {
		s = s[:snippetLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1] // don't cut a character in half
		}
		s += "…"
	}
	return strings.Join(strings.Fields(s), " ")
}
