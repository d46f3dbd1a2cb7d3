package nomadclient

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

func TestCheckAddress(t *testing.T) {
	cases := []struct {
		addr, want string
	}{
		{"", ""},
		{"http://127.0.0.1:4646", ""},
		{"https://nomad.service.consul:4646", ""},
		{"unix:///secrets/api.sock", ""},
		{"127.0.0.1:4646", "needs a scheme: http://, https:// or unix://"},
		{"ftp://nomad:4646", `"ftp://nomad:4646" is not an http://, https:// or unix:// address`},
		{"http://", "has no host"},
		{"http://admin:hunter2@nomad:4646", `"http://admin:xxxxx@nomad:4646" carries credentials`},
		{"http://admin:hunter2@[::1", "not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckAddress(tc.addr)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckAddress: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestNew: settings in Options win over the environment, except the namespace, which
// never comes from NOMAD_NAMESPACE.
func TestNew(t *testing.T) {
	var got http.Header
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, query = r.Header.Clone(), r.URL.RawQuery
		w.Write([]byte(`"127.0.0.1:4647"`))
	}))
	defer srv.Close()
	t.Setenv("NOMAD_ADDR", "http://127.0.0.1:1")
	t.Setenv("NOMAD_TOKEN", "env-token")
	t.Setenv("NOMAD_NAMESPACE", "from-task-env")
	t.Setenv("NOMAD_REGION", "env-region")

	c, err := New(Options{Address: srv.URL, Token: "cfg-token"})
	if err != nil {
		t.Fatal(err)
	}
	// The fake does not answer a job; only the request matters here.
	_, _, _ = c.Jobs().Info("web", nil)
	if got.Get("X-Nomad-Token") != "cfg-token" {
		t.Errorf("token header %q, want the configured one", got.Get("X-Nomad-Token"))
	}
	if !strings.Contains(query, "namespace=default") || !strings.Contains(query, "region=env-region") {
		t.Errorf("query %q: want namespace=default (not NOMAD_NAMESPACE) and region from NOMAD_REGION", query)
	}

	if _, err := New(Options{Address: "ftp://x"}); err == nil {
		t.Error("New accepted an ftp:// address")
	}
}

func TestStatusCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/job/missing":
			http.Error(w, "job not found", http.StatusNotFound)
		default:
			http.Error(w, "conflicting operation over lock", http.StatusConflict)
		}
	}))
	defer srv.Close()
	c, err := New(Options{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Jobs().Info("missing", nil)
	if StatusCode(err) != http.StatusNotFound || !IsNotFound(err) {
		t.Errorf("StatusCode(%v) = %d, want 404", err, StatusCode(err))
	}
	_, _, err = c.Variables().AcquireLock(&api.Variable{Path: "a/b"}, nil)
	if StatusCode(err) != http.StatusConflict {
		t.Errorf("StatusCode(%v) = %d, want 409", err, StatusCode(err))
	}

	srv.Close()
	_, _, err = c.Jobs().Info("web", nil)
	if err == nil || StatusCode(err) != 0 {
		t.Errorf("StatusCode(%v) = %d, want 0 for no answer", err, StatusCode(err))
	}
}
