package httpsrc

import (
	"net/url"
	"strings"

	"github.com/autoscalerd/autoscalerd/sources"
)

// redacted stands in for every secret removed from a message, as in sources.Redact.
const redacted = "<redacted>"

// secretWords mark query parameters and headers whose values are credentials. Matching is
// by substring of the lower-cased name, so "api_key", "X-Auth-Token" and "access_token"
// are all caught; redacting a harmless "sort_key" too is the cheap side of that trade.
var secretWords = []string{"token", "key", "secret", "password", "passwd", "pwd", "auth", "sig", "credential", "cookie", "session"}

// looksSecret reports whether a query parameter or header name likely carries a credential.
func looksSecret(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// RedactURL returns raw fit for logs and error messages: the userinfo is replaced, and so
// are the values of query parameters named like credentials (token, key, secret,
// password, ...). The order of the parameters is kept, so the operator still recognises
// the URL. Text that does not parse as a URL is hidden entirely: it may be a DSN with a
// password in a place we cannot find.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	hadUser := u.User != nil
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery) // RawQuery is printed verbatim, unescaped
	}
	s := u.String()
	if hadUser {
		// Built by hand: url.User would percent-encode the placeholder.
		if scheme, rest, ok := strings.Cut(s, "://"); ok {
			s = scheme + "://" + redacted + "@" + rest
		}
	}
	return s
}

func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		unescaped, err := url.QueryUnescape(name)
		if err != nil {
			unescaped = name
		}
		if hasValue && looksSecret(unescaped) {
			parts[i] = name + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// urlSecrets lists the credential values inside raw (the userinfo in every form it
// travels in, see sources.URLUserinfoForms; secret-named query values), so they can also
// be scrubbed from response bodies that echo them back.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	out := sources.URLUserinfoForms(raw)
	for name, vals := range u.Query() {
		if looksSecret(name) {
			out = append(out, vals...)
		}
	}
	return out
}
