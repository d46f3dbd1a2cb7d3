package configs_test

import (
	"errors"
	"strings"

	"github.com/autoscalerd/autoscalerd/internal/plugin"
)

// The loader's own tests run without the real kinds (they live in layers above configs):
// these two stand-ins give the test files a "process" target and a "file" query to write.

type processKind struct {
	Command []string `yaml:"command" required:"true"`
}

func (p *processKind) TargetKey() string { return strings.Join(p.Command, " ") }

type fileKind struct {
	Path string `yaml:"path" required:"true"`
}

var errStandIn = errors.New("configs tests build no plugins")

func init() {
	plugin.Register(plugin.Target, "process", "", func() *processKind { return &processKind{} },
		func(*processKind, struct{}) (any, error) { return nil, errStandIn })
	plugin.Register(plugin.Query, "file", "", func() *fileKind { return &fileKind{} },
		func(*fileKind, struct{}) (any, error) { return nil, errStandIn })
}
