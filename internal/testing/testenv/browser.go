package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Browser is a headless Chromium driven through chromedriver's WebDriver (W3C) HTTP API:
// no client library, a few JSON calls.
type Browser struct {
	t       testing.TB
	base    string // http://127.0.0.1:PORT/session/ID
	outDir  string
	shotSeq int
}

// StartBrowser starts chromedriver and a headless Chromium session (Debian's chromium and
// chromium-driver), closed when the test ends. Screenshots go to outDir.
func StartBrowser(t testing.TB, outDir string) *Browser {
	t.Helper()
	const how = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
	driver := LookPath(t, "chromedriver", how)
	chromium := LookPath(t, "chromium", how)
	port := FreePort(t)
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := WaitTCP(context.Background(), addr, 20*time.Second); err != nil {
		t.Fatalf("chromedriver: %v\n%s", err, logs.String())
	}
	profile := t.TempDir()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":             "chrome",
		"unhandledPromptBehavior": "ignore", // the test answers prompts itself
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--user-data-dir=" + profile, "--window-size=1200,900"},
		},
	}}}
	b := &Browser{t: t, base: "http://" + addr + "/session", outDir: outDir}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(http.MethodPost, "", caps, &sess); err != nil {
		t.Fatalf("starting a Chromium session: %v\n%s", err, logs.String())
	}
	b.base += "/" + sess.SessionID
	t.Cleanup(func() { _ = b.call(http.MethodDelete, "", nil, nil) })
	return b
}

// call sends one WebDriver command and decodes its "value" into out.
func (b *Browser) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		_ = json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (b *Browser) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// Open navigates to url and waits for the page to load.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.must(b.call(http.MethodPost, "/url", map[string]string{"url": url}, nil))
}

// Resize sets the window's size in CSS pixels.
func (b *Browser) Resize(w, h int) {
	b.t.Helper()
	b.must(b.call(http.MethodPost, "/window/rect", map[string]int{"width": w, "height": h}, nil))
}

// Click clicks the first element matching a CSS selector.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	var el map[string]string
	b.must(b.call(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": selector}, &el))
	for _, id := range el { // the key is the W3C element identifier
		b.must(b.call(http.MethodPost, "/element/"+id+"/click", map[string]any{}, nil))
	}
}

// Eval runs a script (a function body: use return) and decodes its result into out.
func (b *Browser) Eval(script string, out any) {
	b.t.Helper()
	b.must(b.call(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": []any{}}, out))
}

// Prompt waits for a JavaScript dialog, returns its text and answers it with answer.
func (b *Browser) Prompt(answer string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var text string
	for {
		err := b.call(http.MethodGet, "/alert/text", nil, &text)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no dialog appeared: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.must(b.call(http.MethodPost, "/alert/text", map[string]string{"text": answer}, nil))
	b.must(b.call(http.MethodPost, "/alert/accept", map[string]any{}, nil))
	return text
}

// Screenshot saves the viewport as outDir/NN-name.png and returns the path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	var data string
	b.must(b.call(http.MethodGet, "/screenshot", nil, &data))
	png, err := base64.StdEncoding.DecodeString(data)
	b.must(err)
	b.shotSeq++
	p := filepath.Join(b.outDir, fmt.Sprintf("%02d-%s.png", b.shotSeq, name))
	b.must(os.WriteFile(p, png, 0o644))
	b.t.Logf("screenshot: %s", p)
	return p
}

// WaitFor polls a script until it returns true.
func (b *Browser) WaitFor(what, script string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		if err := b.call(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": []any{}}, &ok); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
