package kernels

// Indexer scoring (the lightning indexer of DeepSeek-V4's compressed sparse
// attention): every visible compressed key is scored against all indexer
// heads at once,
//
//	score[k] = Σ_h w[h]·max(0, ⟨q_h, key_k⟩).
//
// At long context this is the largest compute item of a decode step (32K
// keys × 64 heads × 128 dims at 128K tokens), so it is a register-blocked
// kernel: 4 heads × 3 keys per step, split over keys between workers.

// IndexScoresRef is the plain definition of IndexScores, in float64.
func IndexScoresRef(dst, q []float32, heads, d int, w []float32, keys [][]float32) {
	for k, key := range keys {
		var s float64
		for h := 0; h < heads; h++ {
			var dot float64
			for c, v := range q[h*d : (h+1)*d] {
				dot += float64(v) * float64(key[c])
			}
			if dot > 0 {
				s += float64(w[h]) * dot
			}
		}
		dst[k] = float32(s)
	}
}

// IndexScores writes score[k] = Σ_h w[h]·max(0, ⟨q_h, keys[k]⟩) into dst for
// every key, with q holding heads rows of d floats and every key at least d
// floats. It runs on p (nil: the caller alone); the result does not
// depend on the thread count (each key is computed by the same operations wherever
// its chunk starts). The per-head dot products are summed lane-wise (8
// lanes), and heads are accumulated in four interleaved partial sums
// (h mod 4), so the result differs from IndexScoresRef by float32 rounding.
func IndexScores(p *Pool, dst, q []float32, heads, d int, w []float32, keys [][]float32) {
	n := len(keys)
	if n == 0 {
		return
	}
	_ = dst[n-1]
	if heads <= 0 || d <= 0 {
		clear(dst[:n])
		return
	}
	_ = q[heads*d-1]
	_ = w[heads-1]
	for _, k := range keys {
		_ = k[d-1] // the assembly reads d floats of every key
	}
	if !useSIMD || d%8 != 0 {
		p.For(n, grainFor(n, p.Threads(), 3), func(lo, hi int) {
			indexScoresGo(dst, q, heads, d, w, keys, lo, hi)
		})
		return
	}
	// Pad the heads to a multiple of 4 with zero rows of zero weight: they add
	// w·ReLU(0) = ±0 to a sum that starts at +0, which changes nothing.
	g := (heads + 3) / 4
	qp, wp := q[:heads*d], w[:heads]
	if heads%4 != 0 {
		qp = make([]float32, g*4*d)
		copy(qp, q[:heads*d])
		wp = make([]float32, g*4)
		copy(wp, w[:heads])
	}
	// Grains are multiples of 3, so a key's position in its triple (and with
	// it the code that computes it) never depends on the chunking. On
	// AVX-512 they are multiples of 6 and six keys at a time go through
	// indexScores6x512, which computes each key with indexScores3's
	// operations: the scores are the same bits either way.
	avx512, align := useAVX512, 3
	if avx512 {
		align = 6
	}
	p.For(n, grainFor(n, p.Threads(), align), func(lo, hi int) {
		var acc [24]float32
		// scores writes keys k..k+m-1 from their four lane sums each.
		scores := func(k, m int) {
			for i := range m {
				a := acc[4*i : 4*i+4]
				dst[k+i] = (a[0] + a[2]) + (a[1] + a[3])
			}
		}
		k := lo
		for ; avx512 && k+6 <= hi; k += 6 {
			clear(acc[:])
			indexScores6x512(&qp[0], g, d, &keys[k][0], &keys[k+1][0], &keys[k+2][0],
				&keys[k+3][0], &keys[k+4][0], &keys[k+5][0], &wp[0], &acc[0])
			scores(k, 6)
		}
		for ; k < hi; k += 3 {
			clear(acc[:12])
			k1, k2 := keys[k], keys[k]
			if k+1 < hi {
				k1 = keys[k+1]
			}
			if k+2 < hi {
				k2 = keys[k+2]
			}
			indexScores3(&qp[0], g, d, &keys[k][0], &k1[0], &k2[0], &wp[0], &acc[0])
			scores(k, min(3, hi-k))
		}
	})
}

// IndexScores implements the indexer scoring on the backend's pool (see the
// package-level IndexScores).
func (c *CPU) IndexScores(dst, q []float32, heads, d int, w []float32, keys [][]float32) {
	IndexScores(c.pool, dst, q, heads, d, w, keys)
}

// indexScoresGo is the portable path for keys [lo,hi), with the SIMD path's
// structure (four partial sums over heads) but a plain dot product.
func indexScoresGo(dst, q []float32, heads, d int, w []float32, keys [][]float32, lo, hi int) {
	for k := lo; k < hi; k++ {
		key := keys[k][:d]
		var a [4]float32
		for h := 0; h < heads; h++ {
			if v := dotGo(q[h*d:(h+1)*d], key); v > 0 {
				a[h&3] += w[h] * v
			}
		}
		dst[k] = (a[0] + a[2]) + (a[1] + a[3])
	}
}
