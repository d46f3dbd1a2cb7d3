package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSampleConfigValidates: `sample config` prints a whole configuration that validate
// accepts as it is (host checks off: it names a compose project that is not here).
func TestSampleConfigValidates(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"sample", "config"}, &out, &errOut); code != 0 {
		t.Fatalf("sample config: exit %d: %s", code, errOut.String())
	}
	path := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var vout, verr bytes.Buffer
	if code := Main([]string{"validate", "-c", path, "--skip-host-checks"}, &vout, &verr); code != 0 {
		t.Fatalf("validate of the sample config: exit %d:\n%s", code, verr.String())
	}
	if !strings.Contains(vout.String(), "valid (1 policy)") {
		t.Errorf("validate said %q", vout.String())
	}
}

// TestSampleUnknownKind: a typo'd kind gets a did-you-mean and the list.
func TestSampleUnknownKind(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"sample", "composee"}, &out, &errOut); code != exitInvalid {
		t.Fatalf("exit %d, want %d", code, exitInvalid)
	}
	if want := `no kind "composee" (did you mean "compose"?)`; !strings.Contains(errOut.String(), want) {
		t.Errorf("sample composee said %q, want it to contain %q", errOut.String(), want)
	}
}
