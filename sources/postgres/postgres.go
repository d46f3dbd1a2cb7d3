// Package postgres reads one number from a SQL query: queued rows in a task table,
// expired leases, the age of the oldest job.
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `postgres` query kind.
type Config struct {
	// DSN is a URL (postgres://user:pass@host:5432/db?sslmode=...) or key=value string,
	// anything pgx accepts, including pool_max_conns.
	DSN   configs.Secret `yaml:"dsn" required:"true"`
	Query string         `yaml:"query" required:"true"`
}

func init() {
	sources.Register("postgres", sample, func() *Config { return &Config{} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("query") && strings.TrimSpace(c.Query) == "" {
		ch.Errorf("query", "must not be empty")
	}
	if ch.Has("dsn") {
		if c.DSN.Value() == "" {
			ch.Errorf("dsn", "must not be empty")
		} else if _, err := pgxpool.ParseConfig(c.DSN.Value()); err != nil && !c.DSN.Offline() {
			// Parsing does no network I/O, so `validate` can catch a malformed DSN.
			ch.Errorf("dsn", "%v", redact(err, c.DSN.Value()))
		}
	}
}

type source struct {
	dsn   string
	query string
	where string // host:port/database, for messages
	pool  *shared.Conn[*pgxpool.Pool]
}

// New returns the source for cfg. The pool is opened (or joined) on first use: one pool
// per DSN, whatever the number of queries.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	s := &source{dsn: cfg.DSN.Value(), query: cfg.Query, where: "<unparseable dsn>"}
	if pc, err := pgconn.ParseConfig(s.dsn); err == nil {
		s.where = fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
	}
	s.pool = shared.New(deps.Shared, shared.Spec[*pgxpool.Pool]{
		// The key holds a fingerprint, not the DSN: keys are safe to print.
		Key:   "postgres:" + sources.Fingerprint(s.dsn),
		Open:  s.open,
		Close: func(p *pgxpool.Pool) error { p.Close(); return nil },
	})
	return s, nil
}

func (s *source) open(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		// So a DBA looking at pg_stat_activity sees who runs these queries.
		cfg.ConnConfig.RuntimeParams["application_name"] = "autoscalerd"
	}
	// NewWithConfig connects lazily (no MinConns): the first query dials. The pool outlives
	// the query that opens it, so it must not inherit that query's deadline.
	return pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
}

func (s *source) Value(ctx context.Context) (float64, error) {
	pool, err := s.pool.Get(ctx)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	v, err := s.read(ctx, pool)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	return v, nil
}

// read runs the query and checks its shape: exactly one row with exactly one column.
func (s *source) read(ctx context.Context, pool *pgxpool.Pool) (float64, error) {
	rows, err := pool.Query(ctx, s.query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	if len(fields) != 1 {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.Name
		}
		return 0, fmt.Errorf("query returns %d columns (%s), want exactly one", len(fields), strings.Join(names, ", "))
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, errors.New("query returned no rows, want exactly one (an aggregate such as count(*) always returns one)")
	}
	vals, err := rows.Values()
	if err != nil {
		return 0, err
	}
	if rows.Next() {
		return 0, errors.New("query returned more than one row, want exactly one (aggregate with count(*), sum(...) or max(...))")
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	typeName := "unknown type"
	if t, ok := rows.Conn().TypeMap().TypeForOID(fields[0].DataTypeOID); ok {
		typeName = t.Name
	}
	return number(vals[0], fields[0].Name, typeName)
}

// number converts the one cell to a float64. An interval counts in seconds, so that
// `now() - min(created_at)` (the oldest task's age) works as a query.
func number(v any, column, typeName string) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, fmt.Errorf("column %q is NULL (wrap it in coalesce(..., 0) if NULL means zero)", column)
	case int16:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint32:
		return float64(v), nil
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	case pgtype.Numeric:
		f, err := v.Float64Value()
		if err != nil {
			return 0, fmt.Errorf("column %q: %w", column, err)
		}
		if !f.Valid {
			return 0, fmt.Errorf("column %q is NULL (wrap it in coalesce(..., 0) if NULL means zero)", column)
		}
		return f.Float64, nil
	case pgtype.Interval:
		if !v.Valid {
			return 0, fmt.Errorf("column %q is NULL (wrap it in coalesce(..., 0) if NULL means zero)", column)
		}
		// A month has no fixed length; 30 days is what PostgreSQL's own
		// extract(epoch from interval) assumes.
		days := float64(v.Days) + 30*float64(v.Months)
		return days*86400 + float64(v.Microseconds)/1e6, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("column %q: %q is not a number", column, truncate(v, 40))
		}
		return f, nil
	}
	return 0, fmt.Errorf("column %q is of type %s, not a number (cast it, e.g. %s::numeric)", column, typeName, column)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *source) errorf(format string, args ...any) error {
	return redact(fmt.Errorf("postgres %s: "+format, append([]any{s.where}, args...)...), s.dsn)
}

// redact removes the DSN's password (and the DSN itself) from err.
func redact(err error, dsn string) error {
	secrets := []string{dsn}
	if pc, perr := pgconn.ParseConfig(dsn); perr == nil {
		secrets = append(secrets, pc.Password)
	}
	return sources.Redact(err, secrets...)
}

// Close gives the pool back; the last query using it closes it.
func (s *source) Close() error { return s.pool.Close() }
