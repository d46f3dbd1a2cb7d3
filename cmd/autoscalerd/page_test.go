package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
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

// TestStatusPageChartInBrowser loads the chart of a policy that scaled on one reading: the
// queue reads 95 once between zeros, the policy goes 1→10 and, after its down cooldown,
// 10→1. In headless Chromium at 1400 px and at 400 px the chart shown (the wide one or
// the narrow one) draws that reading although it was not the last of its step, marks
// both actions, and the narrow page needs no sideways scrolling. Screenshots go to the
// test's artifact directory (go test -artifacts keeps them).
func TestStatusPageChartInBrowser(t *testing.T) {
	var spike atomic.Bool
	queue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		depth := 0
		if spike.CompareAndSwap(true, false) {
			depth = 95
		}
		fmt.Fprintf(w, `{"depth": %d}`, depth)
	}))
	defer queue.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	conf := fmt.Sprintf(`policies:
  - name: spiky
    target:
      process:
        command: ["sleep", "3600.625"]
        stop_timeout: 2s
    min: 1
    max: 10
    interval: 200ms
    queries:
      depth:
        http: { url: %q, value: depth }
    replicas: ceil(depth / 10)
    cooldown: { up: 0s, down: 3s }
`, queue.URL)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	d.waitFor("one worker", 15*time.Second, func() bool { return d.policy("spiky").Current == 1 })
	time.Sleep(2 * time.Second) // a few points of an empty queue before the spike
	spike.Store(true)
	d.waitFor("the scale-up on the one reading of 95", 15*time.Second, func() bool { return d.policy("spiky").Current == 10 })
	d.waitFor("the scale-down after the down cooldown", 20*time.Second, func() bool { return d.policy("spiky").Current == 1 })
	time.Sleep(time.Second)

	b := testenv.StartBrowser(t, t.ArtifactDir())
	page := "http://" + d.addr + "/"
	for _, size := range []struct {
		width int
		shown string
	}{{1400, "chart-wide"}, {400, "chart-narrow"}} {
		b.Resize(size.width, 900)
		b.Open(page)
		b.WaitFor("the chart", `return !!document.querySelector('#policy-spiky svg.chart')`)
		b.Screenshot(fmt.Sprintf("chart-%dpx", size.width))
		var got struct {
			Shown     []string `json:"shown"`
			Right     float64  `json:"right"`
			Viewport  float64  `json:"viewport"`
			Scroll    float64  `json:"scroll"`
			Marks     []string `json:"marks"`
			PeakShare float64  `json:"peakShare"`
			Ticks     []string `json:"ticks"`
		}
		b.Eval(`const card = document.querySelector('#policy-spiky');
const shown = [...card.querySelectorAll('svg.chart')].filter(s => s.getBoundingClientRect().width > 0);
const svg = shown[0];
const frame = svg.querySelector('rect[stroke="#ccc"]').getBBox();
const query = svg.querySelector('path[stroke-dasharray]').getBBox();
return {
  shown: shown.map(s => s.getAttribute('class')),
  right: svg.getBoundingClientRect().right,
  viewport: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  marks: [...svg.querySelectorAll('g.mark')].map(g => g.getAttribute('class') + ': ' + g.querySelector('title').textContent),
  peakShare: (frame.y + frame.height - query.y) / frame.height,
  ticks: [...svg.querySelectorAll('text.xtick')].map(t => t.textContent),
};`, &got)
		t.Logf("%d px: %+v", size.width, got)
		if len(got.Shown) != 1 || got.Shown[0] != "chart "+size.shown {
			t.Errorf("%d px: charts shown %q, want the %s one alone", size.width, got.Shown, size.shown)
		}
		if got.Scroll > got.Viewport || got.Right > got.Viewport {
			t.Errorf("%d px: the page is %v px wide and the chart ends at %v: it scrolls sideways", size.width, got.Scroll, got.Right)
		}
		var up, down bool
		for _, m := range got.Marks {
			up = up || regexp.MustCompile(`^mark mark-up: \d\d:\d\d:\d\d up 1→10$`).MatchString(m)
			down = down || regexp.MustCompile(`^mark mark-down: \d\d:\d\d:\d\d down 10→1$`).MatchString(m)
		}
		if !up || !down {
			t.Errorf("%d px: marks %q, want the scale-up 1→10 and the scale-down 10→1", size.width, got.Marks)
		}
		// The axis tops out at 100; the reading of 95 reaches 95 % of the plot's height.
		if got.PeakShare < 0.9 {
			t.Errorf("%d px: the query line reaches %.0f %% of the plot: the reading of 95 is not drawn", size.width, 100*got.PeakShare)
		}
		if len(got.Ticks) < 2 || !regexp.MustCompile(`^\d\d:\d\d(:\d\d)?$`).MatchString(got.Ticks[0]) {
			t.Errorf("%d px: the time axis reads %q, want clock times", size.width, got.Ticks)
		}
	}
}
