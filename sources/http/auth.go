package httpsrc

import (
	"net/http"
	"sort"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
)

// Auth is how a request proves who sends it: extra headers, a bearer token or basic
// auth. Endpoint embeds it; a kind that talks HTTP through another client library can
// embed it inline too (`yaml:",inline"`), call CheckConfig from its own, and Apply it
// in a RoundTripper.
type Auth struct {
	// Headers are Secrets because they usually carry API keys: they may come from a file,
	// and they never reach a log.
	Headers     map[string]configs.Secret `yaml:"headers"`
	BearerToken configs.Secret            `yaml:"bearer_token"`
	BasicAuth   *BasicAuth                `yaml:"basic_auth"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string         `yaml:"username" required:"true"`
	Password configs.Secret `yaml:"password"`
}

// CheckConfig reports conflicting credentials and malformed header names. Call it from
// the CheckConfig of the struct that embeds Auth.
func (a *Auth) CheckConfig(c *configs.Check) {
	if a.BearerToken.IsSet() && a.BasicAuth != nil {
		c.Errorf("bearer_token", "give bearer_token or basic_auth, not both")
	}
	names := make([]string, 0, len(a.Headers))
	for name := range a.Headers {
		names = append(names, name)
	}
	sort.Strings(names) // one message order for one file
	for _, name := range names {
		if http.CanonicalHeaderKey(name) == "Authorization" && (a.BearerToken.IsSet() || a.BasicAuth != nil) {
			c.Errorf("headers", "sets Authorization as well as bearer_token or basic_auth; keep one")
		}
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " :\t\r\n") {
			c.Errorf("headers", "%q is not a header name", name)
		}
	}
}

// Apply sets the headers and credentials on req. A Host header sets req.Host, which is
// what Go sends (it ignores Host in req.Header).
func (a *Auth) Apply(req *http.Request) {
	for name, v := range a.Headers {
		if http.CanonicalHeaderKey(name) == "Host" {
			req.Host = v.Value()
			continue
		}
		req.Header.Set(name, v.Value())
	}
	switch {
	case a.BearerToken.IsSet():
		req.Header.Set("Authorization", "Bearer "+a.BearerToken.Value())
	case a.BasicAuth != nil:
		req.SetBasicAuth(a.BasicAuth.Username, a.BasicAuth.Password.Value())
	}
}

// Secrets lists the credential values, for sources.Redact, in every form they travel in:
// the token, the basic-auth password and its encoded header (sources.BasicAuthForms), and
// the value of every header but the few that only describe the request (sources.HeaderIsSecret).
func (a *Auth) Secrets() []string {
	out := []string{a.BearerToken.Value()}
	if a.BasicAuth != nil {
		out = append(out, sources.BasicAuthForms(a.BasicAuth.Username, a.BasicAuth.Password.Value())...)
	}
	for name, v := range a.Headers {
		if sources.HeaderIsSecret(name) {
			out = append(out, v.Value())
		}
	}
	return out
}
