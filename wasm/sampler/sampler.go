// Package sampler picks the next token from a vector of logits.
//
// Processing order (fixed; see DESIGN.md):
//
//  1. raw log-probabilities (log-softmax of the unmodified logits), only
//     when Params.LogProbs is set;
//  2. logit bias;
//  3. repetition penalty (divide positive logits, multiply negative ones);
//  4. presence and frequency penalties (OpenAI);
//  5. temperature 0 → greedy argmax (lowest id on ties), done;
//  6. temperature scaling;
//  7. top-k on the scaled logits (ties → lower id);
//  8. softmax over the survivors as integer weights (see draw, DESIGN.md);
//  9. top-p: smallest set, in descending logit order (ties → lower id),
//     whose mass is ≥ p of the top-k mass;
//  10. min-p: drop tokens with probability < min_p · p_max;
//  11. draw with the per-request SplitMix64 generator.
//
// The sampler is deterministic: the same Params (seed included), logits and
// history give the same tokens on every Go version and target.
package sampler

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/x448/float16"
)

// MaxTopLogProbs is the largest accepted Params.TopLogProbs (OpenAI's limit).
const MaxTopLogProbs = 20

// Params configures one request's sampling. The zero value is greedy
// decoding with no penalties and no limits.
type Params struct {
	// Temperature divides the logits; 0 selects greedy decoding.
	Temperature float64
	// TopK keeps the K highest logits; 0 disables it.
	TopK int
	// TopP keeps the smallest set of tokens whose probability mass is at
	// least TopP; must be in [0, 1], where 0 (unset) and 1 disable it.
	TopP float64
	// MinP drops tokens whose probability is below MinP times the most
	// likely token's; must be in [0, 1]; 0 disables it.
	MinP float64
	// RepetitionPenalty (HF/llama.cpp): logits of tokens seen in the
	// penalty window are divided by it when positive and multiplied by it
	// when negative. 0 (unset) and 1 disable it; otherwise must be > 0.
	RepetitionPenalty float64
	// PresencePenalty is subtracted once from the logit of every token seen
	// in the window (OpenAI); must be in [-2, 2].
	PresencePenalty float64
	// FrequencyPenalty is subtracted once per occurrence in the window
	// (OpenAI); must be in [-2, 2].
	FrequencyPenalty float64
	// PenaltyLastN limits the penalty window to the last N history tokens;
	// 0 means the whole history passed to Sample.
	PenaltyLastN int
	// LogitBias adds a bias in [-100, 100] to the logit of a token id.
	LogitBias map[int]float32
	// StopTokens end generation when sampled (the token is still returned).
	StopTokens []int
	// MaxTokens ends generation after this many sampled tokens; 0 = no limit.
	MaxTokens int
	// Seed seeds the request's generator.
	Seed uint64
	// LogProbs asks for Choice.LogProb and Choice.Top (model log-probs).
	LogProbs bool
	// TopLogProbs is how many alternatives Choice.Top lists (0..20); it
	// needs LogProbs.
	TopLogProbs int
}

// Alt is one alternative token with its model log-probability.
type Alt struct {
	ID      int
	LogProb float32
}

// Finish says why generation should end after a Choice.
type Finish uint8

const (
	// FinishNone means generation may continue.
	FinishNone Finish = iota
	// FinishStop means a stop token was sampled.
	FinishStop
	// FinishLength means MaxTokens was reached.
	FinishLength
)

// String returns the OpenAI finish_reason spelling ("" for FinishNone).
func (f Finish) String() string {
	switch f {
	case FinishStop:
		return "stop"
	case FinishLength:
		return "length"
	}
	return ""
}

// Choice is one sampled token.
type Choice struct {
	// ID is the chosen token id.
	ID int
	// LogProb is the model's log-probability of ID: log-softmax of the
	// unmodified logits, as OpenAI reports it. Set only with Params.LogProbs.
	LogProb float32
	// SampledLogProb is the log-probability of ID in the processed
	// distribution it was drawn from (0 for greedy decoding).
	SampledLogProb float32
	// Top lists the Params.TopLogProbs most likely tokens under the model
	// distribution, most likely first (ties → lower id).
	Top []Alt
	// Finish says whether generation ends after this token.
	Finish Finish
}

// Sampler samples the tokens of one request. It keeps scratch buffers and
// the generator state, so it must not be used by two goroutines at once.
type Sampler struct {
	p     Params
	rng   Rand
	stops map[int]bool
	count int

	f32   []float32 // working logits
	q     []uint64  // quantized probabilities
	cand  []int32   // surviving ids, ascending (unless all)
	all   bool      // every id survived the filters
	tmp   []int32
	bnd   []int32
	mass  [64<<(tickBits-bucketShift) + 2]uint64 // top-p bucket masses
	seen  []int32                                // occurrence counts by id, zeroed after each step
	touch []int32
	heap  []hItem
}

// New validates p and returns a sampler for one request.
func New(p Params) (*Sampler, error) {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return nil, fmt.Errorf("sampler: temperature %v must be finite and >= 0", p.Temperature)
	case p.TopK < 0:
		return nil, fmt.Errorf("sampler: top_k %d must be >= 0", p.TopK)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return nil, fmt.Errorf("sampler: top_p %v must be in [0, 1]", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return nil, fmt.Errorf("sampler: min_p %v must be in [0, 1]", p.MinP)
	case !finite(p.RepetitionPenalty) || p.RepetitionPenalty < 0:
		return nil, fmt.Errorf("sampler: repetition_penalty %v must be finite and > 0", p.RepetitionPenalty)
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return nil, fmt.Errorf("sampler: presence_penalty %v must be in [-2, 2]", p.PresencePenalty)
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return nil, fmt.Errorf("sampler: frequency_penalty %v must be in [-2, 2]", p.FrequencyPenalty)
	case p.PenaltyLastN < 0:
		return nil, fmt.Errorf("sampler: penalty_last_n %d must be >= 0", p.PenaltyLastN)
	case p.MaxTokens < 0:
		return nil, fmt.Errorf("sampler: max_tokens %d must be >= 0", p.MaxTokens)
	case p.TopLogProbs < 0 || p.TopLogProbs > MaxTopLogProbs:
		return nil, fmt.Errorf("sampler: top_logprobs %d must be in [0, %d]", p.TopLogProbs, MaxTopLogProbs)
	case p.TopLogProbs > 0 && !p.LogProbs:
		return nil, errors.New("sampler: top_logprobs needs logprobs")
	}
	for id, b := range p.LogitBias {
		if id < 0 {
			return nil, fmt.Errorf("sampler: logit_bias token id %d is negative", id)
		}
		if !(b >= -100 && b <= 100) {
			return nil, fmt.Errorf("sampler: logit_bias[%d] = %v must be in [-100, 100]", id, b)
		}
	}
	s := &Sampler{p: p, rng: Rand{state: p.Seed}, stops: map[int]bool{}}
	for _, id := range p.StopTokens {
		if id < 0 {
			return nil, fmt.Errorf("sampler: stop token id %d is negative", id)
		}
		s.stops[id] = true
	}
	if s.p.TopP == 0 {
		s.p.TopP = 1
	}
	if s.p.RepetitionPenalty == 0 {
		s.p.RepetitionPenalty = 1
	}
	return s, nil
}

// Params returns the sampler's parameters with defaults filled in.
func (s *Sampler) Params() Params { return s.p }

// Generated returns how many tokens the sampler has produced.
func (s *Sampler) Generated() int { return s.count }

// SampleFloat16 is Sample for IEEE half-precision logits given as raw bits.
func (s *Sampler) SampleFloat16(logits []uint16, history []int) (Choice, error) {
	buf := make([]float32, len(logits))
	for i, h := range logits {
		buf[i] = float16.Frombits(h).Float32()
	}
	return s.Sample(buf, history)
}

// Sample picks the next token. logits holds one value per vocabulary id and
// is not modified; history is the token sequence the penalties look at
// (prompt and/or generated tokens — the caller decides; OpenAI counts the
// generated text). It returns an error for empty logits, NaN or +Inf values,
// all logits -Inf, out-of-range history or bias ids, or once the request
// has already finished.
func (s *Sampler) Sample(logits []float32, history []int) (Choice, error) {
	n := len(logits)
	if n == 0 {
		return Choice{}, errors.New("sampler: empty logits")
	}
	if s.p.MaxTokens > 0 && s.count >= s.p.MaxTokens {
		return Choice{}, fmt.Errorf("sampler: max_tokens %d already reached", s.p.MaxTokens)
	}
	if n > math.MaxInt32 {
		return Choice{}, errors.New("sampler: vocabulary too large")
	}
	var c Choice
	rawMax, bad := maxFinite(logits)
	if bad >= 0 {
		return Choice{}, fmt.Errorf("sampler: logit %d is %v", bad, logits[bad])
	}
	if math.IsInf(float64(rawMax), -1) {
		return Choice{}, errors.New("sampler: every logit is -Inf")
	}

	// Work on a copy only when a bias or a penalty will modify logits;
	// otherwise x aliases logits, which draw only reads.
	x := logits
	if len(s.p.LogitBias) > 0 || (len(history) > 0 && s.penalizes()) {
		x = grow(&s.f32, n)
		copy(x, logits)
	}
	for id, b := range s.p.LogitBias {
		if id >= n {
			return Choice{}, fmt.Errorf("sampler: logit_bias token id %d out of range (vocab %d)", id, n)
		}
		x[id] = float32(x[id] + b)
	}
	touched, err := s.penalize(x, history)
	if err != nil {
		return Choice{}, err
	}
	// The processed maximum equals the raw one unless a bias or a penalty
	// changed some logit; then draw recomputes it.
	procMax := float64(rawMax)
	if touched || len(s.p.LogitBias) > 0 {
		procMax = math.NaN()
	}

	if s.p.Temperature == 0 {
		c.ID = argmax(x)
	} else {
		id, lp, err := s.draw(x, procMax)
		if err != nil {
			return Choice{}, err
		}
		c.ID, c.SampledLogProb = id, lp
	}

	if s.p.LogProbs {
		lse := logSumExp(logits, rawMax)
		c.LogProb = float32(float64(logits[c.ID]) - lse)
		if k := s.p.TopLogProbs; k > 0 {
			for _, id := range s.topK(logits, k) {
				c.Top = append(c.Top, Alt{ID: int(id), LogProb: float32(float64(logits[id]) - lse)})
			}
		}
	}
	s.count++
	switch {
	case s.stops[c.ID]:
		c.Finish = FinishStop
	case s.p.MaxTokens > 0 && s.count >= s.p.MaxTokens:
		c.Finish = FinishLength
	}
	return c, nil
}

// penalizes reports whether any of the repetition, presence and frequency
// penalties is active.
func (s *Sampler) penalizes() bool {
	return s.p.RepetitionPenalty != 1 || s.p.PresencePenalty != 0 || s.p.FrequencyPenalty != 0
}

// penalize applies the repetition, presence and frequency penalties in
// place and reports whether it changed any logit.
func (s *Sampler) penalize(x []float32, history []int) (bool, error) {
	rep, pres, freq := s.p.RepetitionPenalty, s.p.PresencePenalty, s.p.FrequencyPenalty
	if !s.penalizes() || len(history) == 0 {
		return false, nil
	}
	h := history
	if s.p.PenaltyLastN > 0 && len(h) > s.p.PenaltyLastN {
		h = h[len(h)-s.p.PenaltyLastN:]
	}
	seen := grow(&s.seen, len(x))
	touch := s.touch[:0]
	defer func() {
		for _, id := range touch {
			seen[id] = 0
		}
		s.touch = touch
	}()
	for _, id := range h {
		if id < 0 || id >= len(x) {
			return false, fmt.Errorf("sampler: history token id %d out of range (vocab %d)", id, len(x))
		}
		if seen[id] == 0 {
			touch = append(touch, int32(id))
		}
		seen[id]++
	}
	// Visit in first-seen order; each token is penalized once.
	for _, id := range touch {
		v := x[id]
		if rep != 1 {
			if v > 0 {
				v = float32(v / float32(rep))
			} else {
				v = float32(v * float32(rep))
			}
		}
		v = float32(v - float32(float32(seen[id])*float32(freq)) - float32(pres))
		x[id] = v
	}
	return len(touch) > 0, nil
}

// argmax returns the index of the largest value, the lowest on ties.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// logSumExp returns log Σ exp(x_i) in float64; max is max(x).
func logSumExp(x []float32, max float32) float64 {
	m := float64(max)
	sum := 0.0
	for _, v := range x {
		sum += expNeg(float64(v) - m)
	}
	return m + math.Log(sum)
}

// quantBits returns the fixed-point scale for n probabilities: each one is
// at most 2^s and their sum stays below 2^62, so integer sums never
// overflow and are exact — which makes top-p and the draw independent of
// summation order (see DESIGN.md).
func quantBits(n int) uint {
	return 62 - uint(bits.Len(uint(n)))
}

// draw runs steps 6–11 on processed logits x and returns the chosen id and
// its log-probability in the final distribution. max is max(x) when known,
// NaN otherwise.
//
// Definitions (the tests' reference implements the same ones by brute
// force): with a = log2(e)·4096/T and m the largest surviving logit, token
// i gets t_i = x_i·a − m·a (in 1/4096ths of a power of two, so t = 0 for
// the top token) and the integer weight q_i = floor(2^(t_i/4096) · 2^sc),
// which is 0 whenever t_i < −(sc+1)·4096.
func (s *Sampler) draw(x []float32, max float64) (int, float32, error) {
	n := len(x)
	// cand lists the surviving ids in ascending order; all == true stands
	// for "every id" so the common path never builds a 129k-entry list.
	cand, all := s.cand[:0], true
	if k := s.p.TopK; k > 0 && k < n {
		cand, all = append(cand, s.topK(x, k)...), false
		slices.Sort(cand)
	}
	// Max of the survivors; scaling by a positive factor keeps order.
	m := math.Inf(-1)
	if all && max == max {
		m = max
	} else if all {
		mx := float32(m)
		for _, v := range x {
			if v > mx {
				mx = v
			}
		}
		m = float64(mx)
	} else {
		for _, id := range cand {
			if v := float64(x[id]); v > m {
				m = v
			}
		}
	}
	if math.IsInf(m, -1) {
		return 0, 0, errors.New("sampler: every candidate logit is -Inf")
	}
	a := float64(float64(1/s.p.Temperature) * log2eTicks)
	b := float64(m * a)
	sc := quantBits(n)
	// Below cutT, 2^(t/4096+sc) < 1/2, so q is 0: skipping the exponential
	// there is exact, not an approximation.
	cutT := -float64(sc+1) * ticks
	q := grow(&s.q, n)
	var total uint64
	// With top-p the bucket masses are gathered in the same pass (see topP).
	mass := &s.mass
	doTopP := s.p.TopP < 1
	if doTopP {
		*mass = [len(s.mass)]uint64{}
	}
	switch {
	case all && doTopP:
		// Only the bucket masses: topP finds the kept ids again from x
		// with two thresholds and computes their weights then.
		total = quantMass(x, bucketThreshold(float32(m), math.MaxInt32, a, b, cutT), a, b, cutT, int64(sc), mass)
	case all:
		total = quantAll(x, q[:len(x)], a, b, cutT, int64(sc))
	default:
		for _, id := range cand {
			t := float64(float64(x[id])*a) - b
			var qv uint64
			if t >= cutT {
				qv = uint64(pow2Ticks(t, int64(sc)))
				if doTopP {
					mass[-(int64(t) >> bucketShift)] += qv
				}
			}
			q[id] = qv
			total += qv
		}
	}
	filtered := false
	if doTopP {
		cand = s.topP(x, cand, all, q[:n], total, float32(m), a, b, cutT, int64(sc))
		all, filtered = false, true
	}
	if mp := s.p.MinP; mp > 0 {
		thr := uint64(math.Ceil(math.Ldexp(mp, int(sc))))
		if all {
			cand = cand[:0]
			for i, v := range q[:n] {
				if v >= thr {
					cand = append(cand, int32(i))
				}
			}
			all = false
		} else {
			kept := cand[:0]
			for _, id := range cand {
				if q[id] >= thr {
					kept = append(kept, id)
				}
			}
			cand = kept
		}
		filtered = true
	}
	s.cand, s.all = cand, all
	if filtered {
		total = 0
		for _, id := range cand {
			total += q[id]
		}
	}
	if total == 0 {
		// Cannot happen (the max survives with q = 2^sc), kept as a guard.
		return 0, 0, errors.New("sampler: empty candidate set")
	}
	r := s.rng.Below(total)
	pick := -1
	var cum uint64
	if all {
		qn := q[:n]
		i := 0
		// Skip four at a time while the pick lies further on (see the
		// quantization loop on why).
		for ; i+4 <= len(qn); i += 4 {
			w := qn[i : i+4 : i+4]
			if c := cum + w[0] + w[1] + w[2] + w[3]; c <= r {
				cum = c
			} else {
				break
			}
		}
		for ; i < len(qn); i++ {
			if cum += qn[i]; cum > r {
				pick = i
				break
			}
		}
	} else {
		i := 0
		for ; i+4 <= len(cand); i += 4 {
			w := cand[i : i+4 : i+4]
			if c := cum + q[w[0]] + q[w[1]] + q[w[2]] + q[w[3]]; c <= r {
				cum = c
			} else {
				break
			}
		}
		for ; i < len(cand); i++ {
			id := cand[i]
			if cum += q[id]; cum > r {
				pick = int(id)
				break
			}
		}
	}
	if pick < 0 {
		return 0, 0, errors.New("sampler: draw out of range") // unreachable
	}
	return pick, float32(math.Log(float64(q[pick])) - math.Log(float64(total))), nil
}

// bucketShift groups t into buckets of 2^bucketShift ticks (1/16 of a power
// of two) for top-p. The bucket of t is -(int64(t) >> bucketShift), which
// never decreases as t decreases.
const bucketShift = 8

// topP returns the ascending ids of the smallest set, taken in order of
// descending t (ties → lower id), whose weight reaches ceil(p·total).
// Integer sums are exact and buckets follow the t order, so walking bucket
// masses from the top and sorting only the boundary bucket gives exactly
// the result of sorting the whole vocabulary. draw has filled s.mass.
func (s *Sampler) topP(x []float32, cand []int32, all bool, q []uint64, total uint64, m float32, a, b, cutT float64, sc int64) []int32 {
	target := uint64(math.Ceil(float64(s.p.TopP * float64(total))))
	// Float rounding may push the target past the exact total; clamp it.
	target = min(max(target, 1), total)
	mass := &s.mass
	var cum uint64
	bk := 0
	for ; bk < len(mass)-1; bk++ {
		if cum+mass[bk] >= target {
			break
		}
		cum += mass[bk]
	}
	tOf := func(id int32) float64 { return float64(float64(x[id])*a) - b }
	kept := s.tmp[:0]
	boundary := s.bnd[:0]
	visit := func(id int32, t float64) {
		if t < cutT {
			return
		}
		switch k := int(-(int64(t) >> bucketShift)); {
		case k < bk:
			kept = append(kept, id)
		case k == bk:
			boundary = append(boundary, id)
		}
	}
	if all {
		// draw kept only the bucket masses. t never decreases as x grows,
		// so the ids in buckets < bk (≤ bk) are those whose logit reaches
		// the threshold keepX (bndX), found by bisection on float32s.
		keepX := bucketThreshold(m, bk-1, a, b, cutT)
		bndX := bucketThreshold(m, bk, a, b, cutT)
		kept, boundary = scanAbove(x, keepX, bndX, kept, boundary)
		for _, id := range boundary {
			q[id] = weight(x[id], a, b, sc)
		}
	} else {
		for _, id := range cand {
			visit(id, tOf(id))
		}
	}
	slices.SortFunc(boundary, func(i, j int32) int {
		if ti, tj := tOf(i), tOf(j); ti != tj {
			if ti > tj {
				return -1
			}
			return 1
		}
		return int(i - j)
	})
	take := 0
	for _, id := range boundary {
		if cum >= target {
			break
		}
		take++
		cum += q[id]
	}
	// kept was filled in ascending id order (the scans above visit ids in
	// order), so only the few boundary ids taken need sorting; each is
	// then moved into place with one copy instead of sorting all of kept,
	// which in WebAssembly cost more than the rest of the step.
	picks := boundary[:take]
	slices.Sort(picks)
	if len(picks) <= 32 {
		for _, id := range picks {
			at, _ := slices.BinarySearch(kept, id)
			kept = append(kept, 0)
			copy(kept[at+1:], kept[at:])
			kept[at] = id
		}
	} else {
		// Many picks: one backward merge (picks lives in s.bnd, not kept).
		i, j := len(kept)-1, len(picks)-1
		kept = append(kept, picks...)
		for w := len(kept) - 1; j >= 0; w-- {
			if i >= 0 && kept[i] > picks[j] {
				kept[w] = kept[i]
				i--
			} else {
				kept[w] = picks[j]
				j--
			}
		}
	}
	if all {
		for _, id := range kept {
			q[id] = weight(x[id], a, b, sc)
		}
	}
	s.tmp, s.bnd = cand[:0], boundary[:0]
	return kept
}

// hItem is a heap entry: a logit and its id.
type hItem struct {
	v  float32
	id int32
}

// less orders heap items worst-first: lower value, then higher id.
func (a hItem) less(b hItem) bool {
	if a.v != b.v {
		return a.v < b.v
	}
	return a.id > b.id
}

// topK returns the ids of the k largest values of x, best first (ties →
// lower id), with a size-k min-heap: O(n log k) worst case, and most
// values are rejected by one comparison with the heap's root.
func (s *Sampler) topK(x []float32, k int) []int32 {
	if k > len(x) {
		k = len(x)
	}
	h := s.heap[:0]
	for i, v := range x {
		it := hItem{v, int32(i)}
		if len(h) < k {
			h = append(h, it)
			for j := len(h) - 1; j > 0; {
				p := (j - 1) / 2
				if !h[j].less(h[p]) {
					break
				}
				h[j], h[p] = h[p], h[j]
				j = p
			}
			continue
		}
		if !h[0].less(it) {
			continue
		}
		h[0] = it
		siftDown(h, 0)
	}
	// Pop worst-first into the tail to get best-first order.
	out := make([]int32, len(h))
	for j := len(h) - 1; j >= 0; j-- {
		out[j] = h[0].id
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		siftDown(h, 0)
	}
	s.heap = h
	return out
}

func siftDown(h []hItem, j int) {
	for {
		l := 2*j + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[j]) {
			return
		}
		h[j], h[m] = h[m], h[j]
		j = m
	}
}

// grow returns (*buf)[:n], reallocating when the capacity is short.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}
