package configs

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecisionLog configures the durable decision log under state_dir (package decisionlog):
// every decision that changed the target or failed to, plus a sample of the holds.
type DecisionLog struct {
	// Enabled defaults to true; false keeps decisions only in memory.
	Enabled bool `yaml:"enabled"`
	// HoldSample is the fraction of hold decisions recorded (0 to 1). Holds are most of
	// the ticks and say little; a sample keeps the shape of quiet periods without filling
	// the disk.
	HoldSample float64 `yaml:"hold_sample"`
	// MaxSize is the size at which the active file is rotated.
	MaxSize ByteSize `yaml:"max_size"`
	// MaxFiles is how many files (the active one included) are kept; the oldest goes.
	MaxFiles int `yaml:"max_files"`
}

// Defaults of the decision log: at most 4 × 64 MiB on disk, one hold in a hundred.
const (
	DefaultDecisionLogHoldSample = 0.01
	DefaultDecisionLogMaxSize    = 64 << 20
	DefaultDecisionLogMaxFiles   = 4
	// MinDecisionLogSize keeps rotation from churning on every few records.
	MinDecisionLogSize = 64 << 10
)

// DefaultDecisionLog is the decision log a config gets when it says nothing.
func DefaultDecisionLog() DecisionLog {
	return DecisionLog{Enabled: true, HoldSample: DefaultDecisionLogHoldSample, MaxSize: DefaultDecisionLogMaxSize, MaxFiles: DefaultDecisionLogMaxFiles}
}

func (*DecisionLog) example() string {
	return "decision_log: { hold_sample: 0.01, max_size: 64MiB, max_files: 4 }"
}

// CheckConfig implements Checker.
func (l *DecisionLog) CheckConfig(c *Check) {
	if c.Has("hold_sample") && (math.IsNaN(l.HoldSample) || l.HoldSample < 0 || l.HoldSample > 1) {
		c.Errorf("hold_sample", "%v is not a fraction between 0 and 1 (e.g. 0.01 records one hold in a hundred)", l.HoldSample)
	}
	if c.Has("max_size") && l.MaxSize < MinDecisionLogSize {
		c.Errorf("max_size", "%s is too small (at least %s)", l.MaxSize, ByteSize(MinDecisionLogSize))
	}
	if c.Has("max_files") && l.MaxFiles < 2 {
		c.Errorf("max_files", "must be at least 2 (the file being written and one rotated file)")
	}
}

// ByteSize is a size in bytes, written as a number with an optional unit: 65536, 512KiB,
// 64MiB, 1GiB (powers of 1024), or kB, MB, GB (powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// ParseByteSize parses a size such as 64MiB.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (use e.g. 64MiB, 512KiB or 1GiB)", s)
	}
	return ByteSize(f * float64(mult)), nil
}

func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if v := int64(b); v >= u.mult && v%u.mult == 0 && (v/u.mult < 1024 || u.suffix == "GiB") {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalConfig implements Unmarshaler.
func (b *ByteSize) UnmarshalConfig(d *Decoder, n *yaml.Node, path string) {
	s, ok := d.Scalar(n, path)
	if !ok {
		return
	}
	v, err := ParseByteSize(s)
	if err != nil {
		d.Errorf(n, path, "%v", err)
		return
	}
	*b = v
}
