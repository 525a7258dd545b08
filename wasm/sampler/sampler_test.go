package sampler

import (
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/x448/float16"
)

// kept returns the ids that survived the last draw's filters.
func (s *Sampler) kept(n int) []int32 {
	if !s.all {
		return s.cand
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return ids
}

func TestRandKnownValues(t *testing.T) {
	// Published SplitMix64 outputs for seed 0.
	r := NewRand(0)
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	for i, w := range want {
		if g := r.Uint64(); g != w {
			t.Fatalf("output %d = %#x, want %#x", i, g, w)
		}
	}
	hi, lo := mul64(math.MaxUint64, math.MaxUint64)
	if hi != math.MaxUint64-1 || lo != 1 {
		t.Fatalf("mul64 = %#x %#x", hi, lo)
	}
}

func TestExpNeg(t *testing.T) {
	for x := -707.9; x <= 0; x += 0.0137 {
		got, want := expNeg(x), math.Exp(x)
		if math.Abs(got-want) > 2e-8*want {
			t.Fatalf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
	if expNeg(-800) != 0 || expNeg(math.Inf(-1)) != 0 || expNeg(0) != 1 || expNeg(math.NaN()) != 0 {
		t.Fatal("expNeg edge cases")
	}
}

func TestNewValidation(t *testing.T) {
	bad := []struct {
		p    Params
		want string
	}{
		{Params{Temperature: -1}, "temperature"},
		{Params{Temperature: math.NaN()}, "temperature"},
		{Params{TopK: -1}, "top_k"},
		{Params{TopP: 1.5}, "top_p"},
		{Params{TopP: math.NaN()}, "top_p"},
		{Params{MinP: -0.1}, "min_p"},
		{Params{RepetitionPenalty: -1}, "repetition_penalty"},
		{Params{PresencePenalty: 3}, "presence_penalty"},
		{Params{FrequencyPenalty: -2.5}, "frequency_penalty"},
		{Params{PenaltyLastN: -1}, "penalty_last_n"},
		{Params{MaxTokens: -1}, "max_tokens"},
		{Params{LogProbs: true, TopLogProbs: 21}, "top_logprobs"},
		{Params{TopLogProbs: 2}, "needs logprobs"},
		{Params{LogitBias: map[int]float32{-1: 1}}, "negative"},
		{Params{LogitBias: map[int]float32{3: 101}}, "logit_bias[3]"},
		{Params{StopTokens: []int{-2}}, "stop token"},
	}
	for _, c := range bad {
		_, err := New(c.p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) error = %v, want mention of %q", c.p, err, c.want)
		}
	}
	s, err := New(Params{})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Params(); p.TopP != 1 || p.RepetitionPenalty != 1 {
		t.Fatalf("defaults not filled: %+v", p)
	}
}

func TestSampleErrors(t *testing.T) {
	s, _ := New(Params{Temperature: 1, LogitBias: map[int]float32{10: 1}})
	ninf := float32(math.Inf(-1))
	cases := []struct {
		logits []float32
		hist   []int
		want   string
	}{
		{nil, nil, "empty"},
		{[]float32{0, float32(math.NaN())}, nil, "logit 1"},
		{[]float32{float32(math.Inf(1))}, nil, "logit 0"},
		{[]float32{ninf, ninf}, nil, "-Inf"},
		{[]float32{1, 2}, nil, "logit_bias token id 10"},
	}
	for _, c := range cases {
		if _, err := s.Sample(c.logits, c.hist); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Sample(%v) error = %v, want %q", c.logits, err, c.want)
		}
	}
	s2, _ := New(Params{FrequencyPenalty: 1})
	if _, err := s2.Sample([]float32{1, 2}, []int{5}); err == nil || !strings.Contains(err.Error(), "history token id 5") {
		t.Errorf("history error = %v", err)
	}
}

func TestGreedy(t *testing.T) {
	cases := []struct {
		name   string
		p      Params
		logits []float32
		hist   []int
		want   int
	}{
		{"plain", Params{}, []float32{1, 3, 2}, nil, 1},
		{"tie lowest id", Params{}, []float32{1, 3, 3}, nil, 1},
		{"bias", Params{LogitBias: map[int]float32{0: 5}}, []float32{1, 3, 2}, nil, 0},
		{"repetition positive", Params{RepetitionPenalty: 2}, []float32{1, 3, 2}, []int{1}, 2},
		{"repetition negative", Params{RepetitionPenalty: 2}, []float32{-1, -1.5, -3}, []int{0}, 1},
		{"presence", Params{PresencePenalty: 1.5}, []float32{1, 3, 2}, []int{1, 1}, 2},
		{"frequency", Params{FrequencyPenalty: 0.6}, []float32{1, 3, 2}, []int{1, 1}, 2},
		{"frequency once", Params{FrequencyPenalty: 0.6}, []float32{1, 3, 2.3}, []int{1}, 1},
		{"last n", Params{PresencePenalty: 2, PenaltyLastN: 1}, []float32{1, 3, 2}, []int{1, 0}, 1},
	}
	for _, c := range cases {
		s, err := New(c.p)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := s.Sample(c.logits, c.hist)
		if err != nil {
			t.Fatal(err)
		}
		if ch.ID != c.want {
			t.Errorf("%s: got %d, want %d", c.name, ch.ID, c.want)
		}
	}
}

func TestPenaltyValues(t *testing.T) {
	s, _ := New(Params{RepetitionPenalty: 1.5, PresencePenalty: 0.5, FrequencyPenalty: 0.25})
	x := []float32{3, -3, 1, 7}
	if _, err := s.penalize(x, []int{0, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	// 3/1.5 - 0.25 - 0.5 = 1.25 ; -3*1.5 - 0.75 - 0.5 = -5.75
	want := []float32{1.25, -5.75, 1, 7}
	if !slices.Equal(x, want) {
		t.Fatalf("penalized = %v, want %v", x, want)
	}
	// Scratch counts are cleared between calls.
	y := []float32{3, -3, 1, 7}
	if _, err := s.penalize(y, []int{3}); err != nil {
		t.Fatal(err)
	}
	seven, rep := float32(7), float32(1.5)
	if !slices.Equal(y, []float32{3, -3, 1, seven/rep - 0.25 - 0.5}) {
		t.Fatalf("second call = %v", y)
	}
}

// refDist is the plain reference: it computes t and the integer weight q
// of every id by the definitions in draw's comment, sorts the whole
// vocabulary, and applies top-k, top-p and min-p by definition. It returns
// the kept ids ascending and the weights.
func refDist(x []float32, p Params) ([]int32, []uint64) {
	n := len(x)
	if p.TopP == 0 {
		p.TopP = 1
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.SliceStable(ids, func(a, b int) bool { return x[ids[a]] > x[ids[b]] })
	if p.TopK > 0 && p.TopK < n {
		ids = ids[:p.TopK]
	}
	a := (1 / p.Temperature) * log2eTicks
	b := float64(x[ids[0]]) * a
	sc := quantBits(n)
	tOf := func(id int32) float64 { return float64(x[id])*a - b }
	q := make([]uint64, n)
	var total uint64
	for _, id := range ids {
		if t := tOf(id); t >= -float64(sc+1)*ticks {
			q[id] = uint64(pow2Ticks(t, int64(sc)))
		}
		total += q[id]
	}
	// ids is already in descending t order with ties by id (stable sort).
	if p.TopP < 1 {
		target := min(max(uint64(math.Ceil(p.TopP*float64(total))), 1), total)
		var cum uint64
		for i, id := range ids {
			cum += q[id]
			if cum >= target {
				ids = ids[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		thr := uint64(math.Ceil(math.Ldexp(p.MinP, int(sc))))
		var kept []int32
		for _, id := range ids {
			if q[id] >= thr {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	slices.Sort(ids)
	return ids, q
}

// refSample draws like the sampler but from refDist's output.
func refSample(r *Rand, kept []int32, q []uint64) int {
	var total uint64
	for _, id := range kept {
		total += q[id]
	}
	u := r.Below(total)
	var cum uint64
	for _, id := range kept {
		cum += q[id]
		if cum > u {
			return int(id)
		}
	}
	return -1
}

func randLogits(r *Rand, n int, spread float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		// Sum of uniforms ≈ normal; quantize some values to create ties.
		v := 0.0
		for range 4 {
			v += float64(r.Uint64()>>11)/(1<<53) - 0.5
		}
		x[i] = float32(math.Round(v*spread*8) / 8)
	}
	return x
}

func TestFiltersMatchReference(t *testing.T) {
	gen := NewRand(42)
	params := []Params{
		{Temperature: 1},
		{Temperature: 0.7, TopP: 0.9},
		{Temperature: 1, TopP: 0.5},
		{Temperature: 1.3, TopP: 0.999},
		{Temperature: 1, TopK: 40},
		{Temperature: 1, TopK: 40, TopP: 0.8},
		{Temperature: 0.6, TopP: 0.95, MinP: 0.05},
		{Temperature: 1, MinP: 0.2},
		{Temperature: 2, TopK: 1},
		{Temperature: 1, TopP: 1e-9},
	}
	for trial := range 24 {
		// Sizes that are and are not multiples of the passes' unrolling,
		// random, peaked (most weights 0) and partly masked (-Inf) logits.
		n := []int{7, 100, 5000, 129280, 13, 1003, 40003, 129283}[trial%8]
		x := randLogits(gen, n, []float64{4, 20, 60}[trial%3])
		switch trial % 6 {
		case 1:
			x = PeakedLogits(n, uint64(trial))
		case 3:
			for i := 0; i < n; i += 1 + i%5 {
				x[i] = float32(math.Inf(-1))
			}
		case 5: // ±0 ties at the top (the thresholds order floats by bits)
			for i := 0; i < n; i += 2 {
				x[i] = float32(math.Copysign(0, float64(i%4-1)))
			}
		}
		for _, p := range params {
			p.Seed = uint64(trial)
			s, err := New(p)
			if err != nil {
				t.Fatal(err)
			}
			wantKept, q := refDist(x, p)
			r := NewRand(p.Seed)
			for step := range 5 {
				c, err := s.Sample(x, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(s.kept(len(x)), wantKept) {
					t.Fatalf("n=%d %+v: kept %d ids, reference %d", n, p, len(s.kept(len(x))), len(wantKept))
				}
				if w := refSample(r, wantKept, q); c.ID != w {
					t.Fatalf("n=%d %+v step %d: id %d, reference %d", n, p, step, c.ID, w)
				}
			}
		}
	}
}

// TestTopPSmallestSet checks the top-p definition directly on a small
// distribution with known probabilities.
func TestMaxFiniteReference(t *testing.T) {
	nan, inf, ninf := float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
	for n := 1; n <= 21; n++ {
		for pos := range n {
			for _, bad := range []float32{nan, -nan, inf, ninf, 5} {
				x := randLogits(NewRand(uint64(n*100+pos)), n, 4)
				x[pos] = bad
				if pos+2 < n {
					x[pos+2] = nan // a later bad value must not be reported
				}
				wantM, wantBad := float32(math.Inf(-1)), -1
				for i, v := range x {
					if !(v <= math.MaxFloat32) {
						wantBad = i
						break
					}
					wantM = max(wantM, v)
				}
				m, b := maxFinite(x)
				if b != wantBad || (b < 0 && m != wantM) {
					t.Fatalf("n=%d x=%v: maxFinite = %v, %d; want %v, %d", n, x, m, b, wantM, wantBad)
				}
			}
		}
	}
}

func TestTopPSmallestSet(t *testing.T) {
	// Probabilities ∝ 8,4,2,1,1 (ln values), total 16.
	x := []float32{float32(math.Log(8)), float32(math.Log(4)), float32(math.Log(2)), 0, 0}
	cases := []struct {
		p    float64
		want []int32
	}{
		{0.5, []int32{0}},          // 8/16 = 0.5 reaches p
		{0.51, []int32{0, 1}},      // needs 12/16
		{0.75, []int32{0, 1}},      // exactly 0.75
		{0.9, []int32{0, 1, 2, 3}}, // 15/16; tie 3 vs 4 → lower id
		{0.99, []int32{0, 1, 2, 3, 4}},
	}
	for _, c := range cases {
		s, _ := New(Params{Temperature: 1, TopP: c.p})
		if _, err := s.Sample(x, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.kept(len(x)), c.want) {
			t.Errorf("top_p %v kept %v, want %v", c.p, s.kept(len(x)), c.want)
		}
	}
}

func TestFrequencies(t *testing.T) {
	probs := []float64{0.5, 0.25, 0.15, 0.1}
	x := make([]float32, len(probs))
	for i, p := range probs {
		x[i] = float32(math.Log(p))
	}
	s, _ := New(Params{Temperature: 1, Seed: 7})
	const draws = 40000
	counts := make([]int, len(probs))
	for range draws {
		c, err := s.Sample(x, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[c.ID]++
	}
	for i, p := range probs {
		got := float64(counts[i]) / draws
		sd := math.Sqrt(p * (1 - p) / draws)
		if math.Abs(got-p) > 5*sd {
			t.Errorf("token %d frequency %.4f, want %.4f ± %.4f", i, got, p, 5*sd)
		}
	}
}

// TestSeedDeterminism pins the token sequence for a fixed seed; the same
// numbers must come out on every platform (native, wazero, browser).
func TestSeedDeterminism(t *testing.T) {
	x := randLogits(NewRand(3), 1000, 6)
	run := func() []int {
		s, err := New(Params{Temperature: 0.8, TopP: 0.9, TopK: 50, Seed: 1234})
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for range 12 {
			c, err := s.Sample(x, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c.ID)
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatalf("runs differ: %v vs %v", a, b)
	}
	// Reference sequence from refDist/refSample.
	kept, q := refDist(x, Params{Temperature: 0.8, TopP: 0.9, TopK: 50})
	r := NewRand(1234)
	var ref []int
	for range 12 {
		ref = append(ref, refSample(r, kept, q))
	}
	if !slices.Equal(a, ref) {
		t.Fatalf("sampler %v, reference %v", a, ref)
	}
	if !slices.Equal(a, pinnedSequence) {
		t.Fatalf("sequence %v, pinned %v", a, pinnedSequence)
	}
}

var pinnedSequence = []int{619, 618, 120, 120, 619, 619, 618, 120, 404, 619, 64, 120}

func TestLogProbs(t *testing.T) {
	x := []float32{2, 1, 0.5, -1, 3}
	s, _ := New(Params{LogProbs: true, TopLogProbs: 3, LogitBias: map[int]float32{0: 10}})
	c, err := s.Sample(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	lse := 0.0
	for _, v := range x {
		lse += math.Exp(float64(v))
	}
	lse = math.Log(lse)
	if c.ID != 0 {
		t.Fatalf("id %d, want 0 (biased)", c.ID)
	}
	// Model log-prob ignores the bias.
	if math.Abs(float64(c.LogProb)-(2-lse)) > 1e-6 {
		t.Fatalf("logprob %v, want %v", c.LogProb, 2-lse)
	}
	wantTop := []int{4, 0, 1}
	for i, a := range c.Top {
		if a.ID != wantTop[i] || math.Abs(float64(a.LogProb)-(float64(x[a.ID])-lse)) > 1e-6 {
			t.Fatalf("top[%d] = %+v", i, a)
		}
	}
	if len(c.Top) != 3 {
		t.Fatalf("top len %d", len(c.Top))
	}
	// Sampled log-prob: distribution restricted by top-k 2 at T=1.
	s2, _ := New(Params{Temperature: 1, TopK: 2, Seed: 1})
	c2, _ := s2.Sample(x, nil)
	den := math.Log(math.Exp(3) + math.Exp(2))
	if math.Abs(float64(c2.SampledLogProb)-(float64(x[c2.ID])-den)) > 1e-6 {
		t.Fatalf("sampled logprob %v for id %d", c2.SampledLogProb, c2.ID)
	}
}

func TestFinish(t *testing.T) {
	s, _ := New(Params{StopTokens: []int{1}, MaxTokens: 3})
	seq := [][]float32{{5, 0, 0}, {0, 0, 5}, {0, 5, 0}}
	want := []Finish{FinishNone, FinishNone, FinishStop}
	for i, x := range seq {
		c, err := s.Sample(x, nil)
		if err != nil || c.Finish != want[i] {
			t.Fatalf("step %d: %+v %v", i, c, err)
		}
	}
	if _, err := s.Sample(seq[0], nil); err == nil {
		t.Fatal("expected max_tokens error")
	}
	s2, _ := New(Params{MaxTokens: 2})
	s2.Sample(seq[0], nil)
	if c, _ := s2.Sample(seq[0], nil); c.Finish != FinishLength || c.Finish.String() != "length" {
		t.Fatalf("finish %v", c.Finish)
	}
	if s2.Generated() != 2 {
		t.Fatal("generated count")
	}
}

func TestFloat16(t *testing.T) {
	x := []float32{0.5, 2.25, -1, 2}
	h := make([]uint16, len(x))
	for i, v := range x {
		h[i] = float16.Fromfloat32(v).Bits()
	}
	s, _ := New(Params{LogProbs: true})
	c, err := s.SampleFloat16(h, nil)
	if err != nil || c.ID != 1 {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestStopMatcher(t *testing.T) {
	cases := []struct {
		stops  []string
		pieces []string
		emits  []string
		stopAt int // index of the piece that stops, -1 for none
		flush  string
	}{
		{nil, []string{"ab", "c"}, []string{"ab", "c"}, -1, ""},
		{[]string{"END"}, []string{"hello E", "N", "D tail"}, []string{"hello ", "", "", ""}, 2, ""},
		{[]string{"END"}, []string{"hello E", "N", "x"}, []string{"hello ", "", "ENx"}, -1, ""},
		{[]string{"END"}, []string{"abcE"}, []string{"abc"}, -1, "E"},
		{[]string{"xyz", "y"}, []string{"axy"}, []string{"ax"}, 0, ""},
		{[]string{"ab", "b"}, []string{"cab"}, []string{"c"}, 0, ""},
		{[]string{"停止"}, []string{"好的停", "止了"}, []string{"好的", ""}, 1, ""},
	}
	for ci, c := range cases {
		m := NewStopMatcher(c.stops)
		for i, p := range c.pieces {
			e, stopped := m.Push(p)
			if i < len(c.emits) && e != c.emits[i] {
				t.Errorf("case %d piece %d: emit %q, want %q", ci, i, e, c.emits[i])
			}
			wantStop := c.stopAt >= 0 && i >= c.stopAt
			if stopped != wantStop {
				t.Errorf("case %d piece %d: stopped %v", ci, i, stopped)
			}
		}
		if f := m.Flush(); f != c.flush {
			t.Errorf("case %d: flush %q, want %q", ci, f, c.flush)
		}
	}
}

func BenchmarkSampleTopP(b *testing.B) {
	const n = 129280
	x := randLogits(NewRand(9), n, 12)
	s, _ := New(Params{Temperature: 1, TopP: 0.95, Seed: 1})
	b.ResetTimer()
	for range b.N {
		s.count = 0
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSampleTopKTopP(b *testing.B) {
	const n = 129280
	x := randLogits(NewRand(9), n, 12)
	s, _ := New(Params{Temperature: 0.6, TopK: 50, TopP: 0.95, Seed: 1})
	b.ResetTimer()
	for range b.N {
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSampleLogProbs(b *testing.B) {
	const n = 129280
	x := randLogits(NewRand(9), n, 12)
	s, _ := New(Params{Temperature: 1, TopP: 0.95, LogProbs: true, TopLogProbs: 5, Seed: 1})
	b.ResetTimer()
	for range b.N {
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	}
}

var benchSink float32

// BenchmarkReadLogits is a calibration point: one plain pass summing
// 129,280 logits. On a shared machine compare the other benchmarks with it
// rather than trusting absolute numbers.
func BenchmarkReadLogits(b *testing.B) {
	x := randLogits(NewRand(9), 129280, 12)
	for range b.N {
		s := float32(0)
		for _, v := range x {
			s += v
		}
		benchSink = s
	}
}

// BenchmarkSampleTopPPeaked is BenchmarkSampleTopP (at T=0.8) on logits
// shaped like a confident model step (PeakedLogits): most ids have weight 0.
func BenchmarkSampleTopPPeaked(b *testing.B) {
	x := PeakedLogits(129280, 5)
	s, _ := New(Params{Temperature: 0.8, TopP: 0.95, Seed: 1})
	b.ResetTimer()
	for range b.N {
		s.count = 0
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	}
}
