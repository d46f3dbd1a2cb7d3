package sources

import (
	"errors"
	"io/fs"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		msg     string
		secrets []string
		want    string
	}{
		{"connect postgres://u:p%40ss@h/db: refused", []string{"p@ss"}, "connect postgres://u:<redacted>@h/db: refused"},
		{"auth Bearer tok failed, tok", []string{"tok", "Bearer tok"}, "auth <redacted> failed, <redacted>"},
		{"nothing secret here", []string{"", "zzz"}, "nothing secret here"},
		{"a+b in query a%2Bb", []string{"a+b"}, "<redacted> in query <redacted>"},
	}
	for _, tc := range cases {
		base := &fs.PathError{Op: "open", Path: "x", Err: errors.New(tc.msg)}
		err := Redact(base, tc.secrets...)
		want := "open x: " + tc.want
		if err.Error() != want {
			t.Errorf("Redact(%q) = %q, want %q", tc.msg, err, want)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Errorf("Redact(%q) hides the original error from errors.As", tc.msg)
		}
	}
	if Redact(nil, "x") != nil {
		t.Error("Redact(nil) is not nil")
	}
}
