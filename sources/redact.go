package sources

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Redact returns err with every given secret (and its URL-escaped forms, as they appear
// inside DSNs and URLs) replaced by <redacted> in its message. Client libraries tend to
// echo the address they failed to reach, and a DSN or URL may carry a password: every
// error that mentions a connection string goes through here before it leaves the source.
// errors.Is and errors.As still see the original error.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := RedactString(msg, secrets...)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// RedactString is Redact for a message.
func RedactString(s string, secrets ...string) string {
	// Longest first: one secret may contain another ("Bearer x" and "x").
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		// As written, as URLs and DSNs escape it, and as JSON encoders that escape "/"
		// quote it back (base64 credentials hold slashes).
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("", secret).String()[1:], strings.ReplaceAll(secret, "/", `\/`)} {
			if form != "" {
				s = strings.ReplaceAll(s, form, "<redacted>")
			}
		}
	}
	return s
}

// BasicAuthForms lists what to redact for an HTTP basic-auth credential: the password,
// and the base64 of "user:password" that the Authorization header carries. Redacting the
// password alone is not enough: a server that echoes the request's headers in its error
// body hands back "Authorization: Basic <base64>", which decodes to the password. With no
// password (a token given as URL user info, https://TOKEN@host), Go sends "TOKEN:".
func BasicAuthForms(user, password string) []string {
	forms := []string{base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	if password != "" {
		forms = append(forms, password)
	}
	return forms
}

// URLUserinfoForms lists what to redact for the user info of a URL, which Go's HTTP
// client turns into basic auth: the password (or the user name standing alone, as API
// tokens do) and the encoded header value (BasicAuthForms).
func URLUserinfoForms(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	p, ok := u.User.Password()
	forms := BasicAuthForms(u.User.Username(), p)
	if !ok {
		forms = append(forms, u.User.Username())
	}
	return forms
}

// publicHeaders are request headers that describe the request, not who sends it. Every
// other configured header's value is treated as a secret (scrubbed from messages), since
// APIs name their credential headers freely (X-Tenant, X-Org, Private-Token, ...).
var publicHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Cache-Control": true,
	"Content-Type": true, "Host": true, "User-Agent": true,
}

// HeaderIsSecret reports whether a configured header's value must be kept out of
// messages: every header but the publicHeaders.
func HeaderIsSecret(name string) bool { return !publicHeaders[http.CanonicalHeaderKey(name)] }

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
