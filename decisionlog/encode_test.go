package decisionlog

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEncodingIsEncodingJSONs: a record encodes to the bytes encoding/json writes for it,
// for records with every field, none, and random text (quotes, control characters,
// invalid UTF-8, JavaScript's line ends) and numbers (tiny, huge, negative zero); a value
// JSON cannot hold is null, not a lost record.
func TestEncodingIsEncodingJSONs(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	d := 7
	cases := []Record{
		{},
		{Time: t0, Policy: "w", Action: "up", From: 1, To: 3, Desired: &d, Min: 1, Max: 20, Reason: "queued=300 → ceil(queued / 100)=3 → scale 1→3",
			Failed: true, Error: `dial tcp: "refused"`, DryRun: true, Sampled: true, Repeat: true,
			Values: map[string]*float64{"queued": f(300), "b": nil, "a": f(1.5e-7), "z": f(2e21), "n": f(-0.25), "m": f(math.Copysign(0, -1)), "big": f(123456789012)}},
		{Time: time.Date(2026, 12, 3, 11, 0, 0, 123456789, time.FixedZone("", 3600)), Reason: "tab\there\nnew \"q\" \\ \x01 \u2028 \u2029 <&> \xff\xfe é"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "é", "\"", "\\", "\n", "\x00", "\x1f", "\x7f", "\xff", "\u2028", "→", "<", "😀", " "}
	text := func() string {
		var s strings.Builder
		for range rng.IntN(12) {
			s.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return s.String()
	}
	for range 2000 {
		r := Record{Time: t0.Add(time.Duration(rng.Int64N(1e15))), Policy: text(), Action: text(), From: rng.IntN(100) - 50, To: rng.IntN(100),
			Min: rng.IntN(5), Max: rng.IntN(500), Reason: text(), Error: text(), Failed: rng.IntN(2) == 0, DryRun: rng.IntN(2) == 0,
			Sampled: rng.IntN(2) == 0, Repeat: rng.IntN(2) == 0}
		if rng.IntN(2) == 0 {
			n := rng.IntN(1000)
			r.Desired = &n
		}
		if rng.IntN(2) == 0 {
			r.Values = map[string]*float64{}
			for range rng.IntN(4) {
				v := math.Pow(10, rng.Float64()*60-30) * float64(rng.IntN(3)-1)
				r.Values[text()] = &v
			}
		}
		cases = append(cases, r)
	}
	for _, r := range cases {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("encoded\n%s\nencoding/json:\n%s", got, want)
		}
	}
	r := Record{Policy: "w", Values: map[string]*float64{"nan": f(math.NaN()), "inf": f(math.Inf(1))}}
	var back Record
	if err := json.Unmarshal(appendRecord(nil, &r), &back); err != nil || !reflect.DeepEqual(back.Values, map[string]*float64{"nan": nil, "inf": nil}) {
		t.Fatalf("NaN and infinity: %v, %+v", err, back.Values)
	}
}

// BenchmarkEncode: a typical record (an action with two query values), encoded for the log
// (Encode) and by encoding/json (Marshal), which the log used before.
func BenchmarkEncode(b *testing.B) {
	q, w := 970.0, 12.0
	d := 10
	r := Record{Time: t0, Policy: "workers", Action: "up", From: 2, To: 10, Desired: &d, Min: 1, Max: 50,
		Reason: "queued=970 → ceil(queued / 100)=10 → clamp[1,50]=10 → cooldown.up ok → scale 2→10", DryRun: true,
		Values: map[string]*float64{"queued": &q, "waiting": &w}}
	b.Run("Encode", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendRecord(buf[:0], &r)
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
