package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestStatusPageInBrowser loads the status page in headless Chromium: a query whose
// server answers with a <script> shows it as text (it does not run), a click on Pause
// asks for the API token, pauses the policy and keeps the token in sessionStorage only,
// Resume then needs no second prompt, and at 400 px the page needs no sideways scrolling.
// Screenshots go to the test's artifact directory (go test -artifacts keeps them).
func TestStatusPageInBrowser(t *testing.T) {
	const token = "page-token-9d1c44"
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"depth": 20}`)
	}))
	defer good.Close()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`)
	}))
	defer evil.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	conf := fmt.Sprintf(`api_token: %s
policies:
  - name: e2e
    target:
      process:
        command: ["sleep", "3600.875"]
        stop_timeout: 2s
    min: 1
    max: 5
    interval: 200ms
    queries:
      depth:
        http: { url: %q, value: depth }
      evil:
        http: { url: %q, value: depth }
    replicas: ceil(depth / 10)
    cooldown: { up: 500ms, down: 3s }
`, token, good.URL, evil.URL)
	os.WriteFile(cfg, []byte(conf), 0o644)
	d := startDaemon(t, cfg)
	d.waitFor("a decision naming the evil query's answer", 15*time.Second, func() bool {
		p := d.policy("e2e")
		return p.LastDecision != nil && strings.Contains(p.LastDecision.Reason, "<script>")
	})
	b := testenv.StartBrowser(t, t.ArtifactDir())
	page := "http://" + d.addr + "/"
	b.Open(page)
	b.Screenshot("page")

	var title string
	b.Eval(`return document.title`, &title)
	if title != "autoscalerd" {
		t.Errorf("document.title = %q: the <script> in a reason ran", title)
	}
	var scripts, imgs int
	b.Eval(`return document.querySelectorAll("script").length`, &scripts)
	b.Eval(`return document.querySelectorAll("img").length`, &imgs)
	if scripts != 1 || imgs != 0 {
		t.Errorf("%d script and %d img elements: markup from a reason became elements", scripts, imgs)
	}
	var text string
	b.Eval(`return document.body.innerText`, &text)
	if !strings.Contains(text, `<script>document.title="pwned"</script>`) {
		t.Errorf("the reason is not shown as text:\n%s", text)
	}

	b.Click(`#policy-e2e button[data-action="pause"]`)
	if q := b.Prompt(token); !strings.Contains(q, "API token") {
		t.Errorf("the prompt says %q", q)
	}
	d.waitFor("the policy to be paused", 15*time.Second, func() bool { return d.policy("e2e").Paused })
	b.WaitFor("the reloaded page to show the pause", `return !!document.querySelector('#policy-e2e .badge.warn') && !!document.querySelector('#policy-e2e button[data-action="resume"]')`)
	b.Screenshot("paused")
	var stored, html string
	b.Eval(`return sessionStorage.getItem("autoscalerd-api-token")`, &stored)
	b.Eval(`return document.documentElement.outerHTML`, &html)
	if stored != token {
		t.Errorf("sessionStorage holds %q, want the token", stored)
	}
	if strings.Contains(html, token) {
		t.Error("the page embeds the API token")
	}

	b.Resize(400, 900)
	b.Open(page + "?decisions=open")
	b.Screenshot("narrow-decisions")
	var width int
	b.Eval(`return document.documentElement.scrollWidth`, &width)
	var viewport int
	b.Eval(`return window.innerWidth`, &viewport)
	if width > viewport {
		t.Errorf("at %d px the page is %d px wide: it scrolls sideways", viewport, width)
	}
	var rows string
	b.Eval(`return [...document.querySelectorAll('#policy-e2e table.decisions tr')].map(r => r.innerText).join("\n")`, &rows)
	if !strings.Contains(rows, "paused") {
		t.Errorf("recent decisions lack the pause:\n%s", rows)
	}

	// The 24 h range comes from the decision log, against a clock axis.
	b.Resize(1200, 900)
	b.Click(`.ranges a[href="?range=24h"]`)
	b.WaitFor("the 24h chart", `return location.search === "?range=24h" && !!document.querySelector('.ranges a.on[href="?range=24h"]')`)
	b.Screenshot("range-24h")
	var axis []string
	b.Eval(`return [...document.querySelectorAll('#policy-e2e svg text[text-anchor="middle"]')].map(t => t.textContent)`, &axis)
	if len(axis) < 5 || !regexp.MustCompile(`^\w{3} \d\d:\d\d$`).MatchString(axis[0]) {
		t.Errorf("the 24h chart's axis: %q", axis)
	}

	b.Click(`#policy-e2e button[data-action="resume"]`) // the stored token: no prompt
	d.waitFor("the policy to be resumed", 15*time.Second, func() bool { return !d.policy("e2e").Paused })
	d.waitFor("the scale-up after the resume", 15*time.Second, func() bool { return d.policy("e2e").Current == 2 })
}
