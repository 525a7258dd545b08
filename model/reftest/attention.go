package reftest

import (
	"fmt"
	"math"
	"sort"
)

// ropeFreqs returns the per-pair frequencies θ_i = base^(−2i/rd), i < rd/2,
// of the main rope (ratio-0 layers: rope_theta, no YaRN) or of the compress
// rope (compress_rope_theta with the YaRN correction), spec §2.5.
func (r *ref) ropeFreqs(compressed bool) []float64 {
	c := r.cfg
	rd := c.RopeDim
	base := c.RopeTheta
	if compressed {
		base = c.CRopeTheta
	}
	th := make([]float64, rd/2)
	for i := range th {
		th[i] = math.Pow(base, -2*float64(i)/float64(rd))
	}
	if !compressed || c.RopeFactor <= 1 {
		return th
	}
	corr := func(rot float64) float64 {
		return float64(rd) * math.Log(float64(c.OrigSeqLen)/(2*math.Pi*rot)) / (2 * math.Log(base))
	}
	low := math.Max(math.Floor(corr(c.BetaFast)), 0)
	high := math.Min(math.Ceil(corr(c.BetaSlow)), float64(rd-1))
	span := high - low
	if r.v41 {
		span = math.Max(span, 1e-3)
	} else if span == 0 {
		span = 0.001
	}
	for i := range th {
		ramp := math.Min(math.Max((float64(i)-low)/span, 0), 1)
		th[i] = th[i]*(1-ramp) + th[i]/c.RopeFactor*ramp
	}
	return th
}

// rope rotates the trailing 2·len(th) channels of x in adjacent pairs by the
// angles pos·θ_i (inverse: by −pos·θ_i), in place.
func rope(x []float64, pos int, th []float64, inverse bool) {
	off := len(x) - 2*len(th)
	for i, f := range th {
		a := float64(pos) * f
		if inverse {
			a = -a
		}
		cs, sn := math.Cos(a), math.Sin(a)
		x0, x1 := x[off+2*i], x[off+2*i+1]
		x[off+2*i] = x0*cs - x1*sn
		x[off+2*i+1] = x0*sn + x1*cs
	}
}

// pool is the gated pooling of a compressor (spec §3.3, §4 item 3) with
// `<base>.wkv`, `<base>.wgate` (BF16, no activation rounding) and, when
// present, `<base>.ape` [m, c·d] indexed by the position inside the window.
// Entry w (only complete windows, w < floor(T/m)) pools per channel j the
// softmax over its slots of the gate logits times the values: without
// overlap, the m tokens [w·m, (w+1)·m); with overlap (V4 CSA), the A halves
// (features [0, d)) of tokens [(w−1)·m, w·m) when w > 0 and the B halves
// (features [d, 2d)) of tokens [w·m, (w+1)·m).
func (r *ref) pool(base string, xs [][]float64, m, d int, overlap bool) ([][]float64, error) {
	var ape []float64
	if r.w.has(base + ".ape") {
		var err error
		if ape, err = r.w.vec(base + ".ape"); err != nil {
			return nil, err
		}
	}
	cw := d
	if overlap {
		cw = 2 * d
	}
	nE := len(xs) / m
	a, z := make([][]float64, nE*m), make([][]float64, nE*m)
	for t := range a {
		var err error
		if a[t], err = r.plain(base+".wkv", xs[t]); err != nil {
			return nil, err
		}
		if z[t], err = r.plain(base+".wgate", xs[t]); err != nil {
			return nil, err
		}
		if len(a[t]) != cw || len(z[t]) != cw {
			return nil, fmt.Errorf("%s: projection width %d, want %d", base, len(a[t]), cw)
		}
		if ape != nil {
			for j := range z[t] {
				z[t][j] += ape[(t%m)*cw+j]
			}
		}
	}
	out := make([][]float64, nE)
	for w := range out {
		type slot struct{ t, off int }
		var slots []slot
		if overlap && w > 0 {
			for t := (w - 1) * m; t < w*m; t++ {
				slots = append(slots, slot{t, 0})
			}
		}
		for t := w * m; t < (w+1)*m; t++ {
			off := 0
			if overlap {
				off = d
			}
			slots = append(slots, slot{t, off})
		}
		e := make([]float64, d)
		for j := range e {
			mx := math.Inf(-1)
			for _, s := range slots {
				mx = math.Max(mx, z[s.t][s.off+j])
			}
			num, den := 0.0, 0.0
			for _, s := range slots {
				p := math.Exp(z[s.t][s.off+j] - mx)
				den += p
				num += p * a[s.t][s.off+j]
			}
			e[j] = num / den
		}
		out[w] = e
	}
	return out, nil
}

// attention computes one layer's attention output for every position from
// its input xs (after attn_norm): spec §3 (V4) and §4 (V4.1).
func (r *ref) attention(l int, p string, xs [][]float64) ([][]float64, error) {
	c := r.cfg
	T, H, d, rd := len(xs), c.Heads, c.HeadDim, c.RopeDim
	ratio := c.CompressRatio[l]
	th := r.ropeFreqs(ratio > 0)
	qnorm, err := r.w.vec(p + "q_norm.weight")
	if err != nil {
		return nil, err
	}
	kvnorm, err := r.w.vec(p + "kv_norm.weight")
	if err != nil {
		return nil, err
	}
	sink, err := r.w.vec(p + "attn_sink")
	if err != nil {
		return nil, err
	}
	// Query path (§3.1) and window KV (§3.2), per position.
	cq := make([][]float64, T)
	q := make([][][]float64, T)
	kv := make([][]float64, T)
	for t, x := range xs {
		r.pos = t
		a, err := r.linear(p+"wq_a", x)
		if err != nil {
			return nil, err
		}
		cq[t] = rmsnorm(a, qnorm, float64(c.NormEps))
		qf, err := r.linear(p+"wq_b", cq[t])
		if err != nil {
			return nil, err
		}
		q[t] = make([][]float64, H)
		for h := range q[t] {
			qh := qf[h*d : (h+1)*d]
			if !r.v41 {
				qh = rmsnorm(qh, nil, float64(c.NormEps))
			}
			qh = append([]float64(nil), qh...)
			rope(qh, t, th, false)
			q[t][h] = qh
		}
		k, err := r.linear(p+"wkv", x)
		if err != nil {
			return nil, err
		}
		k = rmsnorm(k, kvnorm, float64(c.NormEps))
		rope(k, t, th, false)
		if r.sim.KVQuant {
			if r.v41 {
				r.q8("window-kv", k, 32)
			} else {
				r.q8("window-kv", k[:d-rd], 64)
			}
		}
		kv[t] = k
	}
	// Compressed entries and, per position, the picked entry indices.
	var entries [][]float64
	var picks [][]int
	if ratio > 0 {
		if r.v41 {
			entries, picks, err = r.compressedV41(l, p, xs, cq)
		} else {
			entries, picks, err = r.compressedV4(p, xs, cq, ratio, th)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.dbg != nil && ratio > 0 {
		if r.dbg.Picks == nil {
			r.dbg.Picks = map[int][][]int{}
		}
		r.dbg.Picks[l] = picks
	}
	// Sparse attention with the sink (§3.6), output de-rotation and grouped
	// output projection (§3.7).
	woa, err := r.w.matrix(p + "wo_a")
	if err != nil {
		return nil, err
	}
	G, gw := c.OGroups, H*d/c.OGroups
	if woa.cols != gw || woa.rows != G*c.OLoraRank {
		return nil, fmt.Errorf("%swo_a: %dx%d, want %dx%d", p, woa.rows, woa.cols, G*c.OLoraRank, gw)
	}
	tau := 1 / math.Sqrt(float64(d))
	ys := make([][]float64, T)
	for t := range xs {
		r.pos = t
		var keys [][]float64
		for s := max(0, t-c.Window+1); s <= t; s++ {
			keys = append(keys, kv[s])
		}
		if ratio > 0 {
			for _, w := range picks[t] {
				keys = append(keys, entries[w])
			}
		}
		o := make([]float64, H*d)
		for h := 0; h < H; h++ {
			lg := make([]float64, len(keys))
			mx := math.Inf(-1)
			for s, k := range keys {
				lg[s] = tau * dot(q[t][h], k)
				mx = math.Max(mx, lg[s])
			}
			z := math.Exp(sink[h] - mx)
			oh := o[h*d : (h+1)*d]
			for s, k := range keys {
				e := math.Exp(lg[s] - mx)
				z += e
				for i := range oh {
					oh[i] += e * k[i]
				}
			}
			for i := range oh {
				oh[i] /= z
			}
			rope(oh, t, th, true)
		}
		u := make([]float64, G*c.OLoraRank)
		for g := 0; g < G; g++ {
			og := o[g*gw : (g+1)*gw]
			for i := 0; i < c.OLoraRank; i++ {
				row := g*c.OLoraRank + i
				u[row] = dot(woa.w[row*gw:(row+1)*gw], og)
			}
		}
		if ys[t], err = r.linear(p+"wo_b", u); err != nil {
			return nil, err
		}
	}
	return ys, nil
}

// compressedV4 builds a V4 CSA/HCA layer's compressed entries (spec §3.3)
// and, per position, the entries it attends (§3.5): every visible entry for
// HCA, the indexer's top-k of the visible entries for CSA (§3.4).
func (r *ref) compressedV4(p string, xs, cq [][]float64, m int, th []float64) ([][]float64, [][]int, error) {
	c := r.cfg
	d, rd := c.HeadDim, c.RopeDim
	pooled, err := r.pool(p+"compressor", xs, m, d, m == 4)
	if err != nil {
		return nil, nil, err
	}
	nw, err := r.w.vec(p + "compressor.norm.weight")
	if err != nil {
		return nil, nil, err
	}
	entries := make([][]float64, len(pooled))
	for w, e := range pooled {
		r.pos = (w+1)*m - 1
		e = rmsnorm(e, nw, float64(c.NormEps))
		rope(e, w*m, th, false)
		if r.sim.KVQuant {
			r.q8("compressed-kv", e[:d-rd], 64)
		}
		entries[w] = e
	}
	picks := make([][]int, len(xs))
	if m != 4 {
		for t := range xs {
			for w := 0; w < (t+1)/m; w++ {
				picks[t] = append(picks[t], w)
			}
		}
		return entries, picks, nil
	}
	// Lightning indexer keys: its own overlapping compressor at d_I.
	dI := c.IndexHeadDim
	ip, err := r.pool(p+"indexer.compressor", xs, 4, dI, true)
	if err != nil {
		return nil, nil, err
	}
	inw, err := r.w.vec(p + "indexer.compressor.norm.weight")
	if err != nil {
		return nil, nil, err
	}
	keys := make([][]float64, len(ip))
	for w, e := range ip {
		r.pos = w*4 + 3
		e = rmsnorm(e, inw, float64(c.NormEps))
		rope(e, w*4, th, false)
		if r.sim.IndexerQuant {
			Hadamard(e)
			r.q4e8("index-key", e, 32)
		}
		keys[w] = e
	}
	for t := range xs {
		r.pos = t
		qi, om, err := r.indexQuery(p, xs[t], cq[t], t, th)
		if err != nil {
			return nil, nil, err
		}
		nvis := (t + 1) / 4
		scores := make([]float64, nvis)
		for w := range scores {
			scores[w] = indexScore(qi, om, keys[w])
		}
		picks[t] = topK(scores, c.IndexTopK, nil)
		r.noteScores(t, len(xs), scores)
		r.noteTopKGap("index-topk", scores, c.IndexTopK, nil)
	}
	return entries, picks, nil
}

// indexQuery is the indexer query of a position (heads [H_I][d_I], RoPE at
// t; V4: Hadamard + Q4E8, V4.1: Q4E8 when simulated) and its head weights
// ω = weights_proj·x · d_I^(−1/2) · H_I^(−1/2).
func (r *ref) indexQuery(p string, x, cq []float64, t int, th []float64) ([][]float64, []float64, error) {
	c := r.cfg
	dI, HI := c.IndexHeadDim, c.IndexHeads
	qf, err := r.linear(p+"indexer.wq_b", cq)
	if err != nil {
		return nil, nil, err
	}
	q := make([][]float64, HI)
	for h := range q {
		q[h] = append([]float64(nil), qf[h*dI:(h+1)*dI]...)
		rope(q[h], t, th, false)
		if r.sim.IndexerQuant {
			if !r.v41 {
				Hadamard(q[h])
			}
			r.q4e8("index-query", q[h], 32)
		}
	}
	om, err := r.plain(p+"indexer.weights_proj", x)
	if err != nil {
		return nil, nil, err
	}
	s := 1 / math.Sqrt(float64(dI)*float64(HI))
	for i := range om {
		om[i] *= s
	}
	return q, om, nil
}

// indexScore is Σ_h ω_h·ReLU(⟨q_h, k⟩).
func indexScore(q [][]float64, om, k []float64) float64 {
	s := 0.0
	for h, qh := range q {
		s += om[h] * math.Max(dot(qh, k), 0)
	}
	return s
}

// topK returns the indices of the k largest scores (fewer when fewer are
// allowed), ties broken toward the lower index, in increasing index order.
// allow, when non-nil, restricts the candidates.
func topK(scores []float64, k int, allow []bool) []int {
	var idx []int
	for i := range scores {
		if allow == nil || allow[i] {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	if len(idx) > k {
		idx = idx[:k]
	}
	sort.Ints(idx)
	return idx
}

// compressedV41 returns the compressed entries a V4.1 layer with ratio > 0
// attends and its per-position picks (spec §4 items 3–10). A KV-source layer
// first builds and publishes its entries and indexer keys; an index-source
// layer scores the latest source's keys and publishes its picks (the
// candidate source also publishes its block mask, which later index sources
// apply); other layers reuse the latest published picks.
func (r *ref) compressedV41(l int, p string, xs, cq [][]float64) ([][]float64, [][]int, error) {
	c := r.cfg
	d := c.HeadDim
	ratio := c.CompressRatio[l]
	th := r.ropeFreqs(true)
	T := len(xs)
	if indexOf(c.KVSourceLayers, l) >= 0 {
		var lat [][]float64
		nw, err := r.w.vec(p + "compressor.norm.weight")
		if err != nil {
			return nil, nil, err
		}
		if ratio > 1 {
			if lat, err = r.pool(p+"compressor", xs, ratio, d, false); err != nil {
				return nil, nil, err
			}
		} else {
			for _, x := range xs {
				v, err := r.plain(p+"compressor.wkv", x)
				if err != nil {
					return nil, nil, err
				}
				lat = append(lat, v)
			}
		}
		knw, err := r.w.vec(p + "indexer.k_norm.weight")
		if err != nil {
			return nil, nil, err
		}
		src := &kvSource{ratio: ratio}
		for g, v := range lat {
			r.pos = (g+1)*ratio - 1
			v = rmsnorm(v, nw, float64(c.NormEps))
			k, err := r.plain(p+"indexer.wk", v)
			if err != nil {
				return nil, nil, err
			}
			k = rmsnorm(k, knw, float64(c.NormEps))
			rope(k, g*ratio, th, false)
			if r.sim.IndexerQuant {
				r.q4e8("index-key", k, 32)
			}
			e := append([]float64(nil), v...)
			rope(e, g*ratio, th, false)
			if r.sim.KVQuant {
				r.q4e4("compressed-kv", e, 16)
			}
			src.entries = append(src.entries, e)
			src.keys = append(src.keys, k)
		}
		r.src = src
	}
	if r.src == nil {
		return nil, nil, fmt.Errorf("layer %d: compressed layer before any KV source", l)
	}
	src := r.src
	if indexOf(c.IndexSourceLayers, l) >= 0 {
		picks := make([][]int, T)
		cand := make([][]bool, T)
		for t := range xs {
			r.pos = t
			qi, om, err := r.indexQuery(p, xs[t], cq[t], t, th)
			if err != nil {
				return nil, nil, err
			}
			nvis := min((t+1)/src.ratio, len(src.keys))
			scores := make([]float64, nvis)
			for g := range scores {
				scores[g] = indexScore(qi, om, src.keys[g])
			}
			var allow []bool
			if r.haveCand && l > c.CandidateSource {
				allow = r.cand[t]
			}
			picks[t] = topK(scores, c.IndexTopK, allow)
			r.noteScores(t, T, scores)
			r.noteTopKGap("index-topk", scores, c.IndexTopK, allow)
			if l == c.CandidateSource {
				cand[t] = candidateMask(scores, c.CandidateBlock, c.CandidateTopK)
			}
		}
		r.picks = picks
		if l == c.CandidateSource {
			r.cand, r.haveCand = cand, true
		}
	}
	if r.picks == nil {
		return nil, nil, fmt.Errorf("layer %d: compressed layer before any index source", l)
	}
	return src.entries, r.picks, nil
}

// candidateMask is the candidate source's two-level selection (spec §4 item
// 9) over the visible scores: blocks of b positions scored by their maximum,
// the block holding the newest visible position forced in, the top nb
// blocks kept (ties toward the lower block), expanded to positions.
func candidateMask(scores []float64, b, nb int) []bool {
	n := len(scores)
	mask := make([]bool, n)
	if n == 0 {
		return mask
	}
	blocks := (n + b - 1) / b
	bs := make([]float64, blocks)
	for i := range bs {
		bs[i] = math.Inf(-1)
		for j := i * b; j < min(n, (i+1)*b); j++ {
			bs[i] = math.Max(bs[i], scores[j])
		}
	}
	bs[(n-1)/b] = math.Inf(1)
	for _, i := range topK(bs, nb, nil) {
		for j := i * b; j < min(n, (i+1)*b); j++ {
			mask[j] = true
		}
	}
	return mask
}

// noteTopKGap records in dbg a top-k whose k-th and (k+1)-th candidates
// differ by less than 1e-5 relative (a float32 implementation may order
// them the other way). Exact ties are not recorded: both sides break them
// toward the lower index.
func (r *ref) noteTopKGap(kind string, scores []float64, k int, allow []bool) {
	if r.dbg == nil {
		return
	}
	var v []float64
	for i, s := range scores {
		if allow == nil || allow[i] {
			v = append(v, s)
		}
	}
	if len(v) <= k {
		return
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(v)))
	gap := v[k-1] - v[k]
	if gap > 0 && gap < 1e-5*math.Max(math.Abs(v[k-1]), 1e-3) {
		r.dbg.NearTies = append(r.dbg.NearTies, NearTie{
			Key: fmt.Sprintf("layer %d pos %d %s gap %.3g", r.layer, r.pos, kind, gap), Op: kind, Pos: r.pos, Margin: gap})
	}
}

// noteScores records a position's indexer scores for dbg.
func (r *ref) noteScores(t, T int, scores []float64) {
	if r.dbg == nil {
		return
	}
	if r.dbg.Scores == nil {
		r.dbg.Scores = map[int][][]float64{}
	}
	if len(r.dbg.Scores[r.layer]) != T {
		r.dbg.Scores[r.layer] = make([][]float64, T)
	}
	r.dbg.Scores[r.layer][t] = scores
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
