package sources

import (
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
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("", secret).String()[1:]} {
			if form != "" {
				s = strings.ReplaceAll(s, form, "<redacted>")
			}
		}
	}
	return s
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
