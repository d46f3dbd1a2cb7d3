package dockerapi

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		host, env, wantErr string
	}{
		{host: "unix:///var/run/docker.sock"},
		{host: "tcp://127.0.0.1:2375"},
		{env: "tcp://10.0.0.1:2376"},
		{host: "tcp://admin:s3cret@10.0.0.1:2376", wantErr: "docker: host tcp://admin:xxxxx@10.0.0.1:2376: credentials in the Docker host address are not supported"},
		{env: "tcp://admin:s3cret@10.0.0.1:2376", wantErr: "tcp://admin:xxxxx@10.0.0.1:2376"},
		{host: "tcp://s3cret@10.0.0.1:2376", wantErr: "tcp://xxxxx@10.0.0.1:2376"},
		{host: "bogus", wantErr: "docker: client for bogus"},
	} {
		t.Run(tc.host+tc.env, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.env)
			c, err := New(tc.host)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New(%q) error = %v, want %q", tc.host, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the password leaked: %v", err)
			}
		})
	}
}

func TestLazyDoesNoIO(t *testing.T) {
	// An address nothing listens on: building and closing must not touch it.
	l := NewLazy("tcp://127.0.0.1:1")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
