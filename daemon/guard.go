package daemon

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
)

// The HTTP surface is often reachable from a browser on the same machine (loopback, no
// token), so it defends against the web as well as against the network:
//
//   - Host: a DNS-rebinding page (evil.example resolving to 127.0.0.1) talks to the daemon
//     with its own name in Host. IP literals and localhost are always accepted (a browser
//     only sends them when that is what it navigated to), so are the names in
//     allowed_hosts; on a loopback listen address nothing else is. A non-loopback listen
//     address accepts any Host unless allowed_hosts is set (operators reach it by names
//     the daemon cannot know).
//   - Cross-origin POSTs (a form or fetch from another site, which needs no CORS
//     preflight with text/plain) are refused by http.CrossOriginProtection, which uses
//     Sec-Fetch-Site and Origin; clients such as curl and `autoscalerd status` send
//     neither and pass.
//   - Every response says nosniff; the page forbids framing, scripts and every resource
//     it does not embed itself.

// maxActionBody caps a POST body. The actions take no parameters, so anything larger is
// not a client of this API.
const maxActionBody = 64 << 10

// guard wraps the routes with the Host check, the cross-origin check and the headers
// every response carries.
func (d *Daemon) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused: POST from the daemon's own page or from a client that is not a browser"})
	}))
	inner := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if !hostAllowed(d.config(), r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "Host " + quoteHost(r.Host) + " is not allowed: use an IP address or localhost, or add the name to allowed_hosts"})
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// hostAllowed applies the Host rules above. An empty Host (HTTP/1.0) comes from no browser.
func hostAllowed(cfg *configs.Config, hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") {
		return true
	}
	for _, a := range cfg.AllowedHosts {
		if strings.EqualFold(a, hostport) || strings.EqualFold(a, host) {
			return true
		}
	}
	return len(cfg.AllowedHosts) == 0 && !configs.IsLoopback(cfg.Listen)
}

// quoteHost cuts a Host header short for a message: it is the client's text (the JSON
// encoding of the answer escapes it).
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return h
}

// action guards a POST endpoint: the bearer token where one is needed (see auth), then
// the body, which must be empty or JSON and at most maxActionBody bytes.
func (d *Daemon) action(next http.HandlerFunc) http.HandlerFunc {
	return d.auth(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large: this endpoint takes no body"})
			return
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the request body: " + err.Error()})
			return
		case len(bytes.TrimSpace(body)) > 0 && !json.Valid(body):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "request body is not JSON: this endpoint takes no body (or {})"})
			return
		}
		next(w, r)
	})
}

// tokenMatches compares a presented token with the configured one in constant time. Both
// are hashed first: subtle.ConstantTimeCompare returns at once when the lengths differ,
// which would tell a prober the token's length.
func tokenMatches(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
