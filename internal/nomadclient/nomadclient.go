// Package nomadclient builds Nomad API clients the way the nomad CLI does (NOMAD_ADDR,
// NOMAD_TOKEN, NOMAD_REGION, NOMAD_CACERT, ... from the environment), with autoscalerd's
// own settings on top. The nomad target and the HA elector share it.
package nomadclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Options are the connection settings a config file may give; empty ones fall back to the
// environment. Namespace is deliberately not taken from NOMAD_NAMESPACE: Nomad sets that
// variable inside every task, so a daemon running as a Nomad job would silently follow
// its own namespace.
type Options struct {
	Address   string
	Token     string
	Namespace string
	Region    string
}

// CheckAddress reports why an address cannot be used, without any I/O.
func CheckAddress(addr string) error {
	if addr == "" {
		return nil
	}
	if !strings.Contains(addr, "://") {
		// Not quoted here and below: an address that does not parse may hold a password.
		return errors.New("needs a scheme: http://, https:// or unix://")
	}
	u, err := url.Parse(addr)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.User != nil {
		// The API client ignores credentials in the address; refusing them also keeps
		// them out of every later message.
		return fmt.Errorf("%q carries credentials; use token (or NOMAD_HTTP_AUTH for basic auth) instead", Redact(addr))
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", Redact(addr))
		}
	case "unix":
		if u.Path == "" && u.Host == "" {
			return fmt.Errorf("%q has no socket path", Redact(addr))
		}
	default:
		return fmt.Errorf("%q is not an http://, https:// or unix:// address", Redact(addr))
	}
	return nil
}

// New returns a client for o. It does no network I/O (TLS files named by NOMAD_CACERT and
// friends are read here, so call it when the connection is first needed).
func New(o Options) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if o.Address != "" {
		cfg.Address = o.Address
	}
	if o.Token != "" {
		cfg.SecretID = o.Token
	}
	if o.Region != "" {
		cfg.Region = o.Region
	}
	cfg.Namespace = o.Namespace
	if cfg.Namespace == "" {
		cfg.Namespace = api.DefaultNamespace
	}
	if err := CheckAddress(cfg.Address); err != nil {
		return nil, fmt.Errorf("nomad address: %w", err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return c, nil
}

// StatusCode returns the HTTP status of a failed Nomad API call, or 0 when the call did
// not get an answer (connection refused, timeout, ...).
func StatusCode(err error) int {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode()
	}
	// Some API methods only keep the status in the text ("Unexpected response code: 404 (...)").
	const marker = "Unexpected response code: "
	if i := strings.Index(err.Error(), marker); i >= 0 {
		var code int
		if _, scanErr := fmt.Sscanf(err.Error()[i+len(marker):], "%d", &code); scanErr == nil {
			return code
		}
	}
	return 0
}

// IsNotFound reports whether a failed call was answered 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// Redact removes a password from a URL, for messages.
func Redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "(unparsable address)"
	}
	if u.User == nil {
		return addr
	}
	return u.Redacted()
}
