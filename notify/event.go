package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

// Event is something an operator may want to hear about. Kind is one of
// configs.NotifyEvents.
type Event struct {
	Kind string
	// Policy is empty for daemon events (config_reloaded, config_failed).
	Policy string
	// From and To are the replica counts before and after (equal when nothing changed,
	// e.g. a pause or a failed scale).
	From, To int
	// Reason is the decision's reason chain, or what happened.
	Reason string
	// Error is what failed, for scale_failed and config_failed.
	Error  string
	DryRun bool
	Time   time.Time
}

// reasonSep separates the steps of a reason chain (see policy.Decision.Reason).
const reasonSep = " → "

// body is the JSON a `format: json` webhook receives; its fields are a documented contract
// (notify/README.md).
type body struct {
	Event   string    `json:"event"`
	Policy  string    `json:"policy,omitempty"`
	From    *int      `json:"from,omitempty"`
	To      *int      `json:"to,omitempty"`
	Summary string    `json:"summary"`
	Reason  string    `json:"reason,omitempty"`
	Reasons []string  `json:"reasons,omitempty"`
	Error   string    `json:"error,omitempty"`
	DryRun  bool      `json:"dry_run,omitempty"`
	Time    time.Time `json:"time"`
	URL     string    `json:"url,omitempty"`
	Host    string    `json:"host,omitempty"`
}

func newBody(e Event, page, host string) body {
	b := body{Host: host, Event: e.Kind, Policy: e.Policy, Summary: Summary(e), Reason: e.Reason, Error: e.Error, DryRun: e.DryRun, Time: e.Time.UTC(), URL: Link(page, e.Policy)}
	if e.Policy != "" {
		from, to := e.From, e.To
		b.From, b.To = &from, &to
	}
	if e.Reason != "" {
		b.Reasons = strings.Split(e.Reason, reasonSep)
	}
	return b
}

func jsonBody(e Event, page, host string) ([]byte, error) {
	return json.Marshal(newBody(e, page, host))
}

// Link is the status page's address for a policy (its card) or, for daemon events, the
// page itself. page is the page's base URL; "" gives "".
func Link(page, policy string) string {
	if page == "" {
		return ""
	}
	if policy == "" {
		return page
	}
	return strings.TrimSuffix(page, "#") + "#policy-" + url.PathEscape(policy)
}

// Summary is one line saying what happened, for people.
func Summary(e Event) string {
	dry := ""
	if e.DryRun {
		dry = " (dry run)"
	}
	switch e.Kind {
	case configs.EventScaled:
		return fmt.Sprintf("%s scaled %d → %d%s", e.Policy, e.From, e.To, dry)
	case configs.EventScaleFailed:
		return fmt.Sprintf("%s failed to scale %d → %d%s", e.Policy, e.From, e.To, dry)
	case configs.EventFallbackEntered:
		return fmt.Sprintf("%s: queries failing, fallback replicas in force (at %d)", e.Policy, e.From)
	case configs.EventFallbackLeft:
		return fmt.Sprintf("%s: queries recovered, fallback left (at %d)", e.Policy, e.To)
	case configs.EventPaused:
		return fmt.Sprintf("%s paused at %d replicas", e.Policy, e.From)
	case configs.EventResumed:
		return fmt.Sprintf("%s resumed at %d replicas", e.Policy, e.From)
	case configs.EventDrainTimedOut:
		return fmt.Sprintf("%s: drain timed out scaling %d → %d", e.Policy, e.From, e.To)
	case configs.EventConfigReloaded:
		return "configuration reloaded"
	case configs.EventConfigFailed:
		return "configuration reload failed; the previous configuration stays in force"
	}
	if e.Policy != "" {
		return e.Policy + ": " + e.Kind
	}
	return e.Kind
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to, so a reason
// holding "<" or a link cannot ping a channel or forge a link.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackBody is a Slack incoming-webhook message: text (the notification and the fallback
// for clients without blocks) plus blocks with the reason chain and the page link.
func slackBody(e Event, page, host string) ([]byte, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string `json:"type"`
		Text     *text  `json:"text,omitempty"`
		Elements []text `json:"elements,omitempty"`
	}
	summary := Summary(e)
	blocks := []block{{Type: "section", Text: &text{Type: "mrkdwn", Text: "*" + slackEscape.Replace(summary) + "*"}}}
	var detail []string
	if e.Reason != "" {
		detail = append(detail, "Reason: `"+slackEscape.Replace(strings.ReplaceAll(e.Reason, "`", "'"))+"`")
	}
	if e.Error != "" {
		detail = append(detail, "Error: `"+slackEscape.Replace(strings.ReplaceAll(e.Error, "`", "'"))+"`")
	}
	if len(detail) > 0 {
		blocks = append(blocks, block{Type: "section", Text: &text{Type: "mrkdwn", Text: strings.Join(detail, "\n")}})
	}
	ctx := []text{{Type: "mrkdwn", Text: e.Time.UTC().Format(time.RFC3339)}}
	if host != "" {
		ctx = append(ctx, text{Type: "mrkdwn", Text: "autoscalerd on " + slackEscape.Replace(host)})
	}
	if link := Link(page, e.Policy); link != "" {
		ctx = append(ctx, text{Type: "mrkdwn", Text: "<" + link + "|status page>"})
	}
	blocks = append(blocks, block{Type: "context", Elements: ctx})
	return json.Marshal(struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{Text: "autoscalerd: " + summary, Blocks: blocks})
}
