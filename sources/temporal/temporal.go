// Package temporal reads the backlog of a Temporal task queue (DescribeTaskQueue with
// statistics): how many tasks wait for a worker, or how long the oldest has waited.
package temporal

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `temporal` query kind.
type Config struct {
	// Address is the frontend's gRPC host:port.
	Address   string `yaml:"address" required:"true"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"task_queue" required:"true"`
	// Types are the task queue types summed: workflow, activity, nexus.
	Types []string `yaml:"types"`
	// Measure is count (tasks in the backlog) or oldest_age (seconds the oldest waiting
	// task has waited); backlog and backlog_age are their older names, still accepted.
	Measure string         `yaml:"measure"`
	APIKey  configs.Secret `yaml:"api_key"`
	TLS     *TLS           `yaml:"tls"`
}

// TLS is configs.TLS plus a switch to turn TLS off where an API key would turn it on.
type TLS struct {
	configs.TLS `yaml:",inline"`
	// Disabled sends the API key in plain text: only for a local proxy or a dev server.
	Disabled bool `yaml:"disabled"`
}

// CheckConfig implements configs.Checker.
func (t *TLS) CheckConfig(c *configs.Check) {
	t.TLS.CheckConfig(c)
	if t.Disabled && !t.TLS.IsZero() {
		c.Errorf("disabled", "TLS is disabled, so the other tls settings would be ignored; remove them or disabled")
	}
}

// measureAliases are the measure names this kind had before every queue kind used
// count and oldest_age; configs written with them keep working.
var measureAliases = map[string]string{
	"backlog":     sources.MeasureCount,
	"backlog_age": sources.MeasureOldestAge,
}

// measure is m in the words every kind uses.
func measure(m string) string {
	if canonical, ok := measureAliases[m]; ok {
		return canonical
	}
	return m
}

// taskQueueTypes maps config words to the API's types.
var taskQueueTypes = map[string]enumspb.TaskQueueType{
	"workflow": enumspb.TASK_QUEUE_TYPE_WORKFLOW,
	"activity": enumspb.TASK_QUEUE_TYPE_ACTIVITY,
	"nexus":    enumspb.TASK_QUEUE_TYPE_NEXUS,
}

func init() {
	sources.Register("temporal", sample, func() *Config {
		return &Config{Namespace: "default", Types: []string{"workflow", "activity"}, Measure: sources.MeasureCount}
	}, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("address") {
		if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" || strings.Contains(c.Address, "://") {
			ch.Errorf("address", "%q is not host:port (e.g. temporal:7233 or my-ns.a1b2c.tmprl.cloud:7233)", c.Address)
		}
	}
	if ch.Has("namespace") && c.Namespace == "" {
		ch.Errorf("namespace", "must not be empty")
	}
	if ch.Has("task_queue") && strings.TrimSpace(c.TaskQueue) == "" {
		ch.Errorf("task_queue", "must not be empty")
	}
	if ch.Has("types") && len(c.Types) == 0 {
		ch.Errorf("types", "must list at least one of workflow, activity, nexus")
	}
	seen := map[string]bool{}
	for _, t := range c.Types {
		if _, ok := taskQueueTypes[t]; !ok {
			ch.Errorf("types", "%q is not a task queue type (use workflow, activity or nexus)", t)
		} else if seen[t] {
			ch.Errorf("types", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if m := measure(c.Measure); m != sources.MeasureCount && m != sources.MeasureOldestAge {
		ch.Errorf("measure", "%q is not a measure (use %s or %s; backlog and backlog_age are older names for them)",
			c.Measure, sources.MeasureCount, sources.MeasureOldestAge)
	}
}

type source struct {
	namespace, queue string
	types            []enumspb.TaskQueueType
	age              bool
	conn             *conn
}

// New returns the source for cfg. It does no I/O: the client dials on the first Value
// and is shared by every query that talks to the same frontend with the same credentials.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	log := deps.Log()
	types := make([]enumspb.TaskQueueType, 0, len(cfg.Types))
	for _, t := range cfg.Types {
		types = append(types, taskQueueTypes[t])
	}
	return &source{
		namespace: cfg.Namespace,
		queue:     cfg.TaskQueue,
		types:     types,
		age:       measure(cfg.Measure) == sources.MeasureOldestAge,
		conn:      newConn(*cfg, log.With("temporal", cfg.Address), deps.Shared),
	}, nil
}

// sharedKey: the namespace is part of each request, not of the connection, so queries
// on several namespaces of one frontend share it.
func sharedKey(c *Config) string {
	tls := "default"
	if c.TLS != nil {
		tls = fmt.Sprintf("%+v", *c.TLS)
	}
	return strings.Join([]string{"temporal", c.Address, "api_key=" + sources.Fingerprint(c.APIKey.Value()), "tls=" + tls}, "\x00")
}

func (s *source) Value(ctx context.Context) (float64, error) {
	svc, err := s.conn.get(ctx)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, typ := range s.types {
		resp, err := svc.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     s.namespace,
			TaskQueue:     &taskqueuepb.TaskQueue{Name: s.queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: typ,
			ReportStats:   true,
		})
		if err != nil {
			return 0, s.describe(typ, err)
		}
		// A task queue nobody has used yet has no stats: an empty backlog, not an error
		// (task queues exist as soon as something is scheduled on them).
		stats := resp.GetStats()
		if s.age {
			total = max(total, stats.GetApproximateBacklogAge().AsDuration().Seconds())
		} else {
			total += float64(stats.GetApproximateBacklogCount())
		}
	}
	return total, nil
}

func (s *source) describe(typ enumspb.TaskQueueType, err error) error {
	what := fmt.Sprintf("temporal: task queue %q (%s, namespace %q)", s.queue, typeName(typ), s.namespace)
	var nsNotFound *serviceerror.NamespaceNotFound
	var denied *serviceerror.PermissionDenied
	switch {
	case errors.As(err, &nsNotFound):
		return sources.Reword(err, "temporal: namespace %q not found on %s", s.namespace, s.conn.cfg.Address)
	case status.Code(err) == codes.Unauthenticated:
		return fmt.Errorf("%s: not authenticated (check api_key): %w", what, err)
	case errors.As(err, &denied):
		return fmt.Errorf("%s: permission denied (the API key's user needs read access to the namespace): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func typeName(t enumspb.TaskQueueType) string {
	for name, v := range taskQueueTypes {
		if v == t {
			return name
		}
	}
	return t.String()
}

// Close releases the shared client; the last query to release it closes it.
func (s *source) Close() error { return s.conn.lazy.Close() }

// conn is a source's hold on one client of a Temporal frontend, dialled on first use and
// shared with every query that talks to the same frontend with the same credentials.
// gRPC reconnects on its own after that; a failed first dial is retried on the next Value.
type conn struct {
	cfg  Config
	log  *slog.Logger
	lazy *shared.Conn[client.Client]
}

func newConn(cfg Config, log *slog.Logger, set *shared.Set) *conn {
	c := &conn{cfg: cfg, log: log}
	c.lazy = shared.New(set, shared.Spec[client.Client]{
		Key:   sharedKey(&cfg),
		Open:  c.dial,
		Close: func(cl client.Client) error { cl.Close(); return nil },
	})
	return c
}

func (c *conn) get(ctx context.Context) (workflowservice.WorkflowServiceClient, error) {
	cl, err := c.lazy.Get(ctx)
	if err != nil {
		return nil, err
	}
	return cl.WorkflowService(), nil
}

func (c *conn) dial(ctx context.Context) (client.Client, error) {
	opts, err := c.options()
	if err != nil {
		return nil, fmt.Errorf("temporal %s: %w", c.cfg.Address, err)
	}
	// DialContext checks the server (GetSystemInfo) within ctx, so an unreachable
	// frontend fails within the query's timeout instead of on some later call.
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("temporal: connect to %s: %w", c.cfg.Address, err)
	}
	return cl, nil
}

// options builds the client options. TLS: on when tls is given (unless disabled), or when
// an API key is set (keys are bearer credentials and Temporal Cloud requires TLS); off
// otherwise, as for a self-hosted frontend without TLS.
func (c *conn) options() (client.Options, error) {
	opts := client.Options{
		HostPort:  c.cfg.Address,
		Namespace: c.cfg.Namespace,
		Identity:  "autoscalerd",
		Logger:    sdklog.NewStructuredLogger(c.log),
	}
	useTLS := c.cfg.APIKey.IsSet()
	if c.cfg.TLS != nil {
		useTLS = !c.cfg.TLS.Disabled
	}
	if c.cfg.APIKey.IsSet() {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.cfg.APIKey.Value())
	}
	switch {
	case useTLS && c.cfg.TLS != nil:
		tc, err := c.cfg.TLS.Client()
		if err != nil {
			return opts, err
		}
		opts.ConnectionOptions.TLS = tc
	case useTLS:
		opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		opts.ConnectionOptions.TLSDisabled = true
	}
	return opts, nil
}
