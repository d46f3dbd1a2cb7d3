package configs

import (
	"sort"
	"sync"
)

// Keyed is implemented by target configs. Two policies whose targets have the same key
// would drive the same thing, which is a config error.
type Keyed interface {
	TargetKey() string
}

var (
	regMu       sync.RWMutex
	sourceKinds = map[string]func() any{}
	targetKinds = map[string]func() any{}
)

// RegisterSource makes a query kind known to the loader. newConfig returns a pointer to a
// fresh config struct with its defaults set. Called from the sources registry.
func RegisterSource(kind string, newConfig func() any) { register(sourceKinds, kind, newConfig) }

// RegisterTarget makes a target kind known to the loader; its config must implement Keyed.
func RegisterTarget(kind string, newConfig func() any) { register(targetKinds, kind, newConfig) }

func register(m map[string]func() any, kind string, newConfig func() any) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := m[kind]; dup {
		panic("configs: kind registered twice: " + kind)
	}
	m[kind] = newConfig
}

// SourceKinds lists the registered query kinds, sorted.
func SourceKinds() []string { return kinds(sourceKinds) }

// TargetKinds lists the registered target kinds, sorted.
func TargetKinds() []string { return kinds(targetKinds) }

func kinds(m map[string]func() any) []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookupKind(m map[string]func() any, kind string) (func() any, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := m[kind]
	return f, ok
}
