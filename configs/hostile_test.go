package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

const onePolicy = `name: workers
target: { process: { command: [/usr/local/bin/worker] } }
max: 10
queries:
  queued: { file: { path: /var/lib/queue/depth } }
replicas: ceil(queued / 100)
`

// loadWithin loads path and fails the test, instead of hanging it, when the load blocks.
func loadWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := configs.Load(path, configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("loading %s still blocked after 20s", path)
		return nil
	}
}

// TestHostileFiles points the config, a policy_dir entry and a { file: } secret at things
// that are not small regular files: each is refused at once with a message naming the
// path, instead of reading until memory runs out or blocking on a FIFO forever.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("listen: 127.0.0.1:9090\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, configs.MaxConfigFile+1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	bigSecret := write("big-secret", strings.Repeat("x", configs.MaxSecretFile+1))
	zeroLink := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zeroLink); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		setup func() string // returns the main file
		want  string
	}{
		"main file is /dev/zero": {
			setup: func() string { return "/dev/zero" },
			want:  "read config: read /dev/zero: is a character device, not a regular file",
		},
		"main file is a symlink to /dev/zero": {
			setup: func() string { return zeroLink },
			want:  "read config: read " + zeroLink + ": is a character device, not a regular file",
		},
		"main file is a FIFO": {
			setup: func() string { return fifo },
			want:  "read config: read " + fifo + ": is a named pipe (FIFO), not a regular file",
		},
		"main file too large": {
			setup: func() string { return big },
			want:  "read config: read " + big + ": larger than 16 MiB",
		},
		"policy_dir holds a FIFO and a link to /dev/zero": {
			setup: func() string {
				pd := filepath.Join(dir, "policies.d")
				os.Mkdir(pd, 0o755)
				syscall.Mkfifo(filepath.Join(pd, "a.yaml"), 0o644)
				os.Symlink("/dev/zero", filepath.Join(pd, "b.yaml"))
				os.WriteFile(filepath.Join(pd, "c.yaml"), []byte(onePolicy), 0o644)
				return write("with-dir.yaml", "policy_dir: policies.d\n")
			},
			want: filepath.Join(dir, "policies.d", "a.yaml") + ": cannot read: is a named pipe (FIFO), not a regular file\n" +
				filepath.Join(dir, "policies.d", "b.yaml") + ": cannot read: is a character device, not a regular file",
		},
		"secret file is /dev/zero": {
			setup: func() string { return write("zero-secret.yaml", "api_token: { file: /dev/zero }\n") },
			want:  filepath.Join(dir, "zero-secret.yaml") + ":1:20: api_token.file: cannot read secret: read /dev/zero: is a character device, not a regular file",
		},
		"secret file is a FIFO": {
			setup: func() string { return write("fifo-secret.yaml", "api_token: { file: fifo }\n") },
			want:  filepath.Join(dir, "fifo-secret.yaml") + ":1:20: api_token.file: cannot read secret: read " + fifo + ": is a named pipe (FIFO), not a regular file",
		},
		"secret file too large": {
			setup: func() string { return write("big-secret.yaml", "api_token: { file: big-secret }\n") },
			want:  filepath.Join(dir, "big-secret.yaml") + ":1:20: api_token.file: cannot read secret: read " + bigSecret + ": larger than 64 KiB",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := loadWithin(t, tc.setup())
			if err == nil {
				t.Fatal("loads without error")
			}
			if err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestSmallRegularFilesStillLoad: the checks refuse only what they should; a symlink to a
// regular file (as Kubernetes and Nomad mount secrets and config maps) loads.
func TestSmallRegularFilesStillLoad(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	os.WriteFile(real, []byte("api_token: { file: token-link }\npolicies:\n  - "+strings.ReplaceAll(onePolicy, "\n", "\n    ")), 0o644)
	os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600)
	os.Symlink("token", filepath.Join(dir, "token-link"))
	link := filepath.Join(dir, "link.yaml")
	os.Symlink(real, link)
	cfg, err := configs.Load(link, configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIToken.Value() != "s3cret" || len(cfg.Policies) != 1 {
		t.Errorf("token %q, %d policies; want s3cret and 1", cfg.APIToken.Value(), len(cfg.Policies))
	}
}
