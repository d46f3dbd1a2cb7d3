// Package drain is the `drain:` block that compose and process targets share: how to ask a
// replica whether it is busy, how to tell it to go quiet (take no new work) and to resume,
// and how long a drain may wait. It also holds what both targets do with it: choosing the
// replicas to drain, waiting for them, and the book of drains the status shows.
//
// A drain, per replica: quiet (signal or HTTP call) → poll busy every `poll` → idle: the
// target stops the replica with its normal stop signal and grace; `timeout` passed: the
// target stops it anyway and logs that its work is cut short. Scale-up takes draining
// replicas back (resume) before it starts new ones.
package drain

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

// Kind says which target the block is on: the port of busy.http and friends means
// something different on each.
type Kind int

// The target kinds with a drain block.
const (
	// Process: a replica listens on base_port + AUTOSCALER_REPLICA on 127.0.0.1; exec
	// runs a command on the daemon's host with AUTOSCALER_REPLICA set; file may contain
	// {replica}.
	Process Kind = iota
	// Compose: port is the container's port, reached on the container's IP on the
	// service's network; exec runs inside the container; file is a path inside it.
	Compose
)

// Defaults.
const (
	DefaultTimeout = time.Hour
	DefaultPoll    = 2 * time.Second
	// probeTimeout bounds one busy probe (an HTTP call or a command).
	probeTimeout = 10 * time.Second
)

// Config is a target's `drain:` block.
type Config struct {
	// Busy asks a replica whether it is working.
	Busy Probe `yaml:"busy" required:"true"`
	// QuietSignal (SIGTSTP, as Sidekiq uses) or Quiet (an HTTP call or command) tells a
	// replica to take no new work. Without either, the drain stops a replica at the first
	// probe that finds it idle.
	QuietSignal string `yaml:"quiet_signal"`
	Quiet       *Probe `yaml:"quiet"`
	// ResumeSignal or Resume undoes quiet when demand comes back during the drain.
	ResumeSignal string `yaml:"resume_signal"`
	Resume       *Probe `yaml:"resume"`
	// Timeout bounds how long a replica may drain before it is stopped anyway.
	Timeout configs.Duration `yaml:"timeout"`
	// Poll is how often a draining replica is asked whether it is still busy.
	Poll configs.Duration `yaml:"poll"`
}

// Probe is one way of reaching a replica: exactly one of http, exec or file (file only
// for busy).
type Probe struct {
	HTTP *HTTP    `yaml:"http"`
	Exec []string `yaml:"exec"`
	File string   `yaml:"file"`
}

// HTTP is a call on a replica's own HTTP server: GET for busy, POST for quiet and resume.
type HTTP struct {
	// Port is the container port (compose).
	Port int `yaml:"port"`
	// BasePort plus AUTOSCALER_REPLICA is the replica's port (process).
	BasePort int    `yaml:"base_port"`
	Path     string `yaml:"path"`
}

// TimeoutOrDefault is the drain timeout in force.
func (c *Config) TimeoutOrDefault() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout.D()
	}
	return DefaultTimeout
}

// PollOrDefault is the busy poll interval in force.
func (c *Config) PollOrDefault() time.Duration {
	if c.Poll > 0 {
		return c.Poll.D()
	}
	return DefaultPoll
}

// Check reports the block's mistakes at their positions. field is the block's key in
// the struct ch checks ("drain").
func (c *Config) Check(ch *configs.Check, field string, kind Kind) {
	at := func(k string) string { return configs.JoinPath(field, k) }
	if ch.Has(at("busy")) {
		c.Busy.check(ch, at("busy"), kind, true)
	}
	if c.Quiet != nil && ch.Has(at("quiet")) {
		c.Quiet.check(ch, at("quiet"), kind, false)
	}
	if c.Resume != nil && ch.Has(at("resume")) {
		c.Resume.check(ch, at("resume"), kind, false)
	}
	for _, k := range []string{"quiet_signal", "resume_signal"} {
		s := c.QuietSignal
		if k == "resume_signal" {
			s = c.ResumeSignal
		}
		if ch.Has(at(k)) {
			if _, err := ParseSignal(s); err != nil {
				ch.Errorf(at(k), "%v", err)
			}
		}
	}
	if ch.Has(at("quiet_signal")) && ch.Has(at("quiet")) {
		ch.Errorf(at("quiet"), "give quiet_signal or quiet, not both")
	}
	if ch.Has(at("resume_signal")) && ch.Has(at("resume")) {
		ch.Errorf(at("resume"), "give resume_signal or resume, not both")
	}
	quiet := ch.Has(at("quiet_signal")) || ch.Has(at("quiet"))
	for _, k := range []string{"resume_signal", "resume"} {
		if ch.Has(at(k)) && !quiet {
			ch.Errorf(at(k), "there is nothing to resume from: add quiet_signal or quiet")
		}
	}
	for _, k := range []string{"timeout", "poll"} {
		d := c.Timeout
		if k == "poll" {
			d = c.Poll
		}
		if ch.Has(at(k)) && d <= 0 {
			ch.Errorf(at(k), "must be more than 0")
		}
	}
}

func (p *Probe) check(ch *configs.Check, field string, kind Kind, busy bool) {
	at := func(k string) string { return configs.JoinPath(field, k) }
	var given []string
	for _, k := range []string{"http", "exec", "file"} {
		if ch.Has(at(k)) {
			given = append(given, k)
		}
	}
	ways := "http or exec"
	if busy {
		ways = "http, exec or file"
	}
	switch {
	case len(given) > 1:
		ch.Errorf(field, "give one of %s, not %s", ways, strings.Join(given, " and "))
		return
	case len(given) == 0:
		ch.Errorf(field, "say how to reach the replica: one of %s", ways)
		return
	}
	if p.File != "" && !busy {
		ch.Errorf(at("file"), "a file can only say whether a replica is busy; use http or exec")
	}
	if ch.Has(at("file")) && p.File == "" {
		ch.Errorf(at("file"), "must not be empty")
	}
	if p.Exec != nil && (len(p.Exec) == 0 || p.Exec[0] == "") {
		ch.Errorf(at("exec"), "must name a program (an argv list such as [/bin/worker-busy])")
	}
	if p.HTTP != nil {
		p.HTTP.check(ch, at("http"), kind)
	}
}

func (h *HTTP) check(ch *configs.Check, field string, kind Kind) {
	at := func(k string) string { return configs.JoinPath(field, k) }
	want, other := "port", "base_port"
	what := "the container port the replica serves on"
	if kind == Process {
		want, other = other, want
		what = "replica n listens on base_port + n, n being its AUTOSCALER_REPLICA"
	}
	if ch.Has(at(other)) {
		ch.Errorf(at(other), "%s is for %s targets; here use %s (%s)", other, map[Kind]string{Process: "compose", Compose: "process"}[kind], want, what)
	} else if !ch.Has(at(want)) {
		ch.Errorf(field, "missing required key %q: %s", want, what)
	}
	port := h.Port
	if kind == Process {
		port = h.BasePort
	}
	if ch.Has(at(want)) && (port < 1 || port > 65535) {
		ch.Errorf(at(want), "%d is not a port (1-65535)", port)
	}
	if ch.Has(at("path")) && !strings.HasPrefix(h.Path, "/") {
		ch.Errorf(at("path"), "%q must start with /", h.Path)
	}
}

// signals a replica may be sent to go quiet or to resume. SIGSTOP is not among them: a
// stopped process cannot say it is idle. SIGTERM and SIGKILL are stop signals, not quiet.
var signals = map[string]syscall.Signal{
	"SIGTSTP":  syscall.SIGTSTP,
	"SIGCONT":  syscall.SIGCONT,
	"SIGUSR1":  syscall.SIGUSR1,
	"SIGUSR2":  syscall.SIGUSR2,
	"SIGHUP":   syscall.SIGHUP,
	"SIGINT":   syscall.SIGINT,
	"SIGQUIT":  syscall.SIGQUIT,
	"SIGWINCH": syscall.SIGWINCH,
	"SIGTTIN":  syscall.SIGTTIN,
	"SIGTTOU":  syscall.SIGTTOU,
}

// LookupSignal finds a signal name in table, with or without the SIG prefix, in any
// case ("SIGTERM", "TERM", "sigint").
func LookupSignal(s string, table map[string]syscall.Signal) (syscall.Signal, bool) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig, ok := table[name]
	return sig, ok
}

// NameIn is the name table gives sig, else Go's description of it.
func NameIn(sig syscall.Signal, table map[string]syscall.Signal) string {
	for name, s := range table {
		if s == sig {
			return name
		}
	}
	return sig.String()
}

// ParseSignal accepts a quiet or resume signal name, with or without SIG, in any case.
func ParseSignal(s string) (syscall.Signal, error) {
	if sig, ok := LookupSignal(s, signals); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a quiet or resume signal (use one of SIGTSTP, SIGCONT, SIGUSR1, SIGUSR2, SIGHUP, SIGINT, SIGQUIT, SIGWINCH, SIGTTIN, SIGTTOU; the SIG prefix is optional)", s)
}

// SignalName is the name of a quiet or resume signal as the config spells it.
func SignalName(sig syscall.Signal) string { return NameIn(sig, signals) }
