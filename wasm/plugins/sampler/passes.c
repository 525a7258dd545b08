/*
 * passes.c: the passes over the whole vocabulary (wasm/sampler/passes.go
 * and the loops of sampler.go), written for wazero.
 *
 * wazero compiles each load and store with a bounds check and splits
 * functions at every branch, which costs more than arithmetic; straight
 * code that takes four or eight ids per iteration, with selects instead of
 * branches and the rare cases sent to a separate path, is what runs fast
 * (measured: DESIGN.md). These functions live in their own file so that
 * clang cannot inline them into the large functions of sample.c, where
 * the register pressure made the same loops several times slower. Every
 * id still gets exactly the value the Go code computes for it; DESIGN.md
 * gives the argument for each shortcut.
 *
 * The scans (maxima, argmax, copy, top-p and top-k skips, logSumExp's
 * terms) use WebAssembly SIMD (simd128), enabled per function (SIMD below)
 * so that the build needs no flag. Only lane-wise operations that are the
 * very IEEE operations of the scalar code are used (f32x4 / f64x2 add,
 * sub, mul, comparisons, pmax, promotion, and truncations exact for the
 * values they see); float sums whose order matters are still added one by
 * one, in id order. The weight passes load and test logits as vectors but
 * compute each weight with scalar arithmetic: their SIMD versions were
 * slower in wazero (DESIGN.md).
 */
#include <wasm_simd128.h>

#include "sampler.h"
#include "pow2tab.h"

#define SIMD __attribute__((target("simd128")))
#define SIMD_INLINE static inline __attribute__((always_inline, target("simd128")))

typedef u64 u64u __attribute__((aligned(1)));

static const float F32_INF = __builtin_inff();

/* ---- maxima ---- */

#define F32_MAX 3.40282346638528859811704183484516925440e+38f

/* max_scalar is Go's `for _, v := range x { if v > m { m = v } }`. */
static float max_scalar(const f32u *x, u32 n, float m) {
	for (u32 i = 0; i < n; i++)
		if (x[i] > m) m = x[i];
	return m;
}

/* max16 runs sixteen `v > m ? v : m` chains (f32x4.pmax(m, v) is exactly
 * that, lane by lane) over x[0:*done], *done being n rounded down to 16,
 * and merges them. The chains hold the maxima of their ids, so the merged
 * value is the scan's, except possibly for the sign of a zero maximum (the
 * scan keeps the first zero it meets, a chain its own): then the scan is
 * redone. NaNs never win a `>`, in a chain or in the scan. With sums set,
 * it also adds the values up in float sums: a NaN among them makes a sum
 * NaN (so does +Inf plus -Inf, a false alarm), and a +Inf makes the
 * maximum +Inf; *suspect then asks the caller for the exact scan. That is
 * cheaper in wazero than testing each value. */
SIMD_INLINE float max16(const f32u *x, u32 n, int sums, u32 *done, int *suspect) {
	v128_t m0 = wasm_f32x4_splat(-F32_INF), m1 = m0, m2 = m0, m3 = m0;
	v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
	u32 i = 0;
	for (; i + 16 <= n; i += 16) {
		v128_t v0 = wasm_v128_load(x + i), v1 = wasm_v128_load(x + i + 4);
		v128_t v2 = wasm_v128_load(x + i + 8), v3 = wasm_v128_load(x + i + 12);
		if (sums) {
			s0 = wasm_f32x4_add(s0, wasm_f32x4_add(v0, v1));
			s1 = wasm_f32x4_add(s1, wasm_f32x4_add(v2, v3));
		}
		m0 = wasm_f32x4_pmax(m0, v0);
		m1 = wasm_f32x4_pmax(m1, v1);
		m2 = wasm_f32x4_pmax(m2, v2);
		m3 = wasm_f32x4_pmax(m3, v3);
	}
	v128_t mv = wasm_f32x4_pmax(wasm_f32x4_pmax(m0, m1), wasm_f32x4_pmax(m2, m3));
	v128_t sv = wasm_f32x4_add(s0, s1);
	float m = wasm_f32x4_extract_lane(mv, 0);
	float l1 = wasm_f32x4_extract_lane(mv, 1), l2 = wasm_f32x4_extract_lane(mv, 2), l3 = wasm_f32x4_extract_lane(mv, 3);
	m = l1 > m ? l1 : m;
	m = l2 > m ? l2 : m;
	m = l3 > m ? l3 : m;
	float s = wasm_f32x4_extract_lane(sv, 0) + wasm_f32x4_extract_lane(sv, 1) + wasm_f32x4_extract_lane(sv, 2) +
		  wasm_f32x4_extract_lane(sv, 3);
	*suspect = m == F32_INF || s != s;
	if (m == 0 && !*suspect) m = max_scalar(x, i, -F32_INF);
	*done = i;
	return m;
}

/* pass_max_finite is maxFinite: the largest value and -1, or the index of
 * the first NaN or +Inf. */
SIMD i64 pass_max_finite(const f32u *x, u32 n, float *max) {
	u32 i;
	int suspect;
	float m = max16(x, n, 1, &i, &suspect);
	if (suspect) {
		i = 0;
		m = -F32_INF;
	}
	for (; i < n; i++) {
		float v = x[i];
		if (!(v <= F32_MAX)) {
			*max = m;
			return i;
		}
		if (v > m) m = v;
	}
	*max = m;
	return -1;
}

/* pass_max is the maximum draw recomputes after a bias or a penalty. */
SIMD float pass_max(const f32u *x, u32 n) {
	u32 i;
	int suspect;
	float m = max16(x, n, 0, &i, &suspect);
	return max_scalar(x + i, n - i, m);
}

/* pass_argmax is argmax, `if v > x[best] { best = i }` from best = 0, given
 * the maximum m of x (NaNs aside): a NaN x[0] is never exceeded, and
 * otherwise the first id of the maximum is the first id equal to m (±0
 * compare equal, as they do for `>`). The search stops there. */
SIMD i32 pass_argmax(const f32u *x, u32 n, float m) {
	float x0 = x[0];
	if (!(x0 == x0)) return 0;
	v128_t mv = wasm_f32x4_splat(m);
	u32 i = 0;
	for (; i + 8 <= n; i += 8)
		if (wasm_v128_any_true(wasm_v128_or(wasm_f32x4_eq(wasm_v128_load(x + i), mv),
						    wasm_f32x4_eq(wasm_v128_load(x + i + 4), mv))))
			break;
	for (; i < n; i++)
		if (x[i] == m) return (i32)i;
	return 0; /* unreachable: m is one of the values */
}

/* ---- conversions ---- */

/* f16 is x448/float16's Float32: exact for every non-NaN value (a normal
 * or subnormal half is the float with the same bits shifted into place
 * times 2^112, an exact product); NaNs become quiet NaNs with the payload. */
static inline float f16(u32 h) {
	u32 sign = (h & 0x8000u) << 16, mag = h & 0x7fffu;
	if (mag >= 0x7c00u) return f32from(sign | 0x7f800000u | (mag & 0x3ffu) << 13 | (mag > 0x7c00u ? 0x400000u : 0));
	return f32from(sign | f32bits(f32from(mag << 13) * 0x1p112f));
}

void pass_f16(const u8 *src, float *dst, u32 n) {
	u32 i = 0;
	for (; i + 4 <= n; i += 4) {
		u64 h = *(const u64u *)(src + 2 * i);
		dst[i] = f16((u32)h & 0xffff);
		dst[i + 1] = f16((u32)(h >> 16) & 0xffff);
		dst[i + 2] = f16((u32)(h >> 32) & 0xffff);
		dst[i + 3] = f16((u32)(h >> 48));
	}
	for (; i < n; i++) dst[i] = f16((u32)src[2 * i] | (u32)src[2 * i + 1] << 8);
}

SIMD void pass_copy(float *dst, const f32u *src, u32 n) {
	u32 i = 0;
	for (; i + 8 <= n; i += 8) {
		wasm_v128_store(dst + i, wasm_v128_load(src + i));
		wasm_v128_store(dst + i + 4, wasm_v128_load(src + i + 4));
	}
	for (; i < n; i++) dst[i] = src[i];
}

/* ---- integer weights (quantMass, quantAll) ----
 *
 * A logit below cutX (the smallest float32 whose t = v·a − b reaches cutT,
 * from bucketThreshold) has weight 0; Go adds that 0 to the bucket of
 * cutT. The others, at most the maximum m (t = 0), have t in [cutT, 0], so
 * int64(t) fits an i32 and the plain truncating conversions are exact and
 * cannot trap. Four logits are tested at a time: all below cutX (or NaN),
 * skipped; all at or above, weighed in straight code; otherwise each one
 * is tested. The caller handles a non-finite cutX (every weight is 0).
 *
 * These passes keep the arithmetic scalar: f64x2 versions (four or two
 * logits per step; the table lookups, the f64→i64 conversions and the
 * bucket stores have to stay scalar) ran 10–20% slower in wazero, whose
 * shuffles, lane extractions and vector shifts cost several instructions
 * each (DESIGN.md). Only the loads and the cutX tests are vectors. Nor did
 * replacing the trapping conversions by f64.trunc and magic additions
 * (fewer instructions, the same time).
 */
#define QUANT(w, TI, Q)                                                                           \
	double TI##_t = (double)(w) * a - b;                                                          \
	i32 TI = __builtin_wasm_trunc_s_i32_f64(TI##_t);                                              \
	u64 Q = (u64)__builtin_wasm_trunc_s_i64_f64(                                              \
		(POW2TAB[TI & (TICKS - 1)] * (one + (TI##_t - (double)TI) * c)) *                     \
		f64from((u64)(i64)((TI >> TICK_BITS) + exp0) << 52));

/* What every weight pass reads from qp (QUANT's operands). */
#define QPARAMS(qp)                                                       \
	double a = (qp)->a, b = (qp)->b, c = (qp)->c, one = (qp)->one; \
	i32 exp0 = (i32)(qp)->sc + 1023;

/* The four lanes of v as floats w0..w3. */
#define LANES4(v)                                                                              \
	float w0 = wasm_f32x4_extract_lane(v, 0), w1 = wasm_f32x4_extract_lane(v, 1); \
	float w2 = wasm_f32x4_extract_lane(v, 2), w3 = wasm_f32x4_extract_lane(v, 3);

/* QUANT of w0..w3: t-integers i0..i3 and weights q0..q3. */
#define QUANT4            \
	QUANT(w0, i0, q0) \
	QUANT(w1, i1, q1) \
	QUANT(w2, i2, q2) \
	QUANT(w3, i3, q3)

/* pass_quant_head is quantMass for top-p: it returns the total and lists,
 * in ascending order, the ids whose bucket is at most L (int64(t) >= head
 * = -256·L) in hl, their buckets in hb and their weights in q. Top-p's
 * boundary is almost always among the first buckets, whose masses the
 * caller sums from the list, and then top-p does not scan the vocabulary
 * again either; adding every weight to its bucket's mass instead (a load
 * and a store per logit, bounds-checked in wazero) was about a quarter of
 * the pass. When the boundary lies deeper, the caller runs it again with
 * every id listed (head = INT32_MIN).
 *
 * Four logits come in one vector load (one bounds check instead of four)
 * and are tested against cutX and headX (bucket_threshold's smallest
 * float32 of a bucket at most L: every listed logit is at or above it) by
 * lane-wise comparisons, which are the scalar `>=`; the weights themselves
 * are the scalar QUANT of each lane. */
SIMD u64 pass_quant_head(const f32u *x, u32 n, float cutX, float headX, const qparams *qp, i32 head, i32 *hl, i32 *hb, u32 *nh, u64 *q) {
	QPARAMS(qp)
	u64 total = 0;
	u32 i = 0, k = 0;
	v128_t vcut = wasm_f32x4_splat(cutX), vhead = wasm_f32x4_splat(headX);
	for (; i + 4 <= n; i += 4) {
		v128_t v = wasm_v128_load(x + i);
		u32 g = wasm_i32x4_bitmask(wasm_f32x4_ge(v, vcut));
		if (!g) continue;
		LANES4(v)
		if (g == 15) {
			QUANT4
			total += q0 + q1 + q2 + q3;
			if (wasm_v128_any_true(wasm_f32x4_ge(v, vhead))) {
				if (i0 >= head) hl[k] = (i32)i, hb[k++] = -(i0 >> BUCKET_SHIFT), q[i] = q0;
				if (i1 >= head) hl[k] = (i32)i + 1, hb[k++] = -(i1 >> BUCKET_SHIFT), q[i + 1] = q1;
				if (i2 >= head) hl[k] = (i32)i + 2, hb[k++] = -(i2 >> BUCKET_SHIFT), q[i + 2] = q2;
				if (i3 >= head) hl[k] = (i32)i + 3, hb[k++] = -(i3 >> BUCKET_SHIFT), q[i + 3] = q3;
			}
			continue;
		}
#define ONE(G, W, J)                                                                    \
	if (G) {                                                                        \
		QUANT(W, ti, qj)                                                        \
		total += qj;                                                            \
		if (ti >= head) hl[k] = (i32)(J), hb[k++] = -(ti >> BUCKET_SHIFT), q[J] = qj; \
	}
		ONE(g & 1, w0, i)
		ONE(g & 2, w1, i + 1)
		ONE(g & 4, w2, i + 2)
		ONE(g & 8, w3, i + 3)
#undef ONE
	}
	for (; i < n; i++) {
		if (!(x[i] >= cutX)) continue;
		QUANT(x[i], ti, qi)
		total += qi;
		if (ti >= head) hl[k] = (i32)i, hb[k++] = -(ti >> BUCKET_SHIFT), q[i] = qi;
	}
	*nh = k;
	return total;
}

/* pass_quant_all is quantAll: every weight stored in q, and the total.
 * Loads and tests four logits at a time like pass_quant_head. */
SIMD u64 pass_quant_all(const f32u *x, u32 n, u64 *q, float cutX, const qparams *qp) {
	QPARAMS(qp)
	u64 total = 0;
	u32 i = 0;
	v128_t vcut = wasm_f32x4_splat(cutX), zero = wasm_i64x2_splat(0);
	for (; i + 4 <= n; i += 4) {
		v128_t v = wasm_v128_load(x + i);
		u32 g = wasm_i32x4_bitmask(wasm_f32x4_ge(v, vcut));
		if (!g) {
			wasm_v128_store(q + i, zero);
			wasm_v128_store(q + i + 2, zero);
			continue;
		}
		LANES4(v)
		if (g == 15) {
			QUANT4
			(void)i0, (void)i1, (void)i2, (void)i3;
			wasm_v128_store(q + i, wasm_i64x2_make((i64)q0, (i64)q1));
			wasm_v128_store(q + i + 2, wasm_i64x2_make((i64)q2, (i64)q3));
			total += q0 + q1 + q2 + q3;
			continue;
		}
		q[i] = q[i + 1] = q[i + 2] = q[i + 3] = 0;
#define ONE(G, W, J)               \
	if (G) {                   \
		QUANT(W, ti, qj)   \
		(void)ti;          \
		q[J] = qj;         \
		total += qj;       \
	}
		ONE(g & 1, w0, i)
		ONE(g & 2, w1, i + 1)
		ONE(g & 4, w2, i + 2)
		ONE(g & 8, w3, i + 3)
#undef ONE
	}
	for (; i < n; i++) {
		q[i] = 0;
		if (!(x[i] >= cutX)) continue;
		QUANT(x[i], ti, qi)
		(void)ti;
		q[i] = qi;
		total += qi;
	}
	return total;
}

/* pass_quant_blocks is quantAll for a plain draw (no top-p, no min-p),
 * which needs the weights only through their cumulative sum in id order:
 * it stores the sum of each block of QBLOCK ids in bsum and returns the
 * total, and pass_pick_blocks finds the block of the pick from those sums
 * and weighs that block's ids again (the same QUANT, the same integers).
 * Storing all 129,280 weights and reading them back cost more than the
 * weights themselves in wazero, where every store is bounds-checked. */
SIMD u64 pass_quant_blocks(const f32u *x, u32 n, float cutX, const qparams *qp, u64 *bsum) {
	QPARAMS(qp)
	u64 total = 0;
	v128_t vcut = wasm_f32x4_splat(cutX);
	for (u32 i = 0, blk = 0; i < n; blk++) {
		u32 end = n - i > QBLOCK ? i + QBLOCK : n;
		u64 sum = 0;
		for (; i + 4 <= end; i += 4) {
			v128_t v = wasm_v128_load(x + i);
			u32 g = wasm_i32x4_bitmask(wasm_f32x4_ge(v, vcut));
			if (!g) continue;
			LANES4(v)
			if (g == 15) {
				QUANT4
				(void)i0, (void)i1, (void)i2, (void)i3;
				sum += q0 + q1 + q2 + q3;
				continue;
			}
#define ONE(G, W)                  \
	if (G) {                   \
		QUANT(W, ti, qj)   \
		(void)ti;          \
		sum += qj;         \
	}
			ONE(g & 1, w0)
			ONE(g & 2, w1)
			ONE(g & 4, w2)
			ONE(g & 8, w3)
#undef ONE
		}
		for (; i < end; i++) {
			if (!(x[i] >= cutX)) continue;
			QUANT(x[i], ti, qi)
			(void)ti;
			sum += qi;
		}
		bsum[blk] = sum;
		total += sum;
	}
	return total;
}

/* pass_pick_blocks is pass_pick_all over the weights pass_quant_blocks
 * summed into bsum: the first id whose cumulative weight exceeds r, or -1. */
i64 pass_pick_blocks(const f32u *x, u32 n, float cutX, const qparams *qp, const u64 *bsum, u64 r) {
	QPARAMS(qp)
	u64 cum = 0;
	for (u32 i = 0, blk = 0; i < n; i += QBLOCK, blk++) {
		if (cum + bsum[blk] <= r) {
			cum += bsum[blk];
			continue;
		}
		u32 end = n - i > QBLOCK ? i + QBLOCK : n;
		for (u32 j = i; j < end; j++) {
			if (!(x[j] >= cutX)) continue;
			QUANT(x[j], tj, qj)
			(void)tj;
			cum += qj;
			if (cum > r) return j;
		}
		return -1; /* unreachable: the block's weights sum past r */
	}
	return -1;
}

/* ---- log-probabilities (logSumExp) ---- */

/* EXPN is expNeg(d) for d = x − max <= 0 (NaN cannot occur: the logits are
 * checked): 0 unless d > -708; otherwise pow2Ticks(d·log2eTicks, 0), which
 * is exactly 1 at d = ±0, expNeg's other case. d is raised to -708 first so
 * that the conversions stay in range; the select then discards it. */
#define EXPN(D, E)                                                                                \
	double E##_d = (D) > -708.0 ? (D) : -708.0;                                               \
	double E##_t = E##_d * LOG2E_TICKS;                                                       \
	i32 E##_i = __builtin_wasm_trunc_s_i32_f64(E##_t);                                        \
	double E = (POW2TAB[E##_i & (TICKS - 1)] * (1 + (E##_t - (double)E##_i) * LN2_OVER_TICKS)) * \
		   f64from((u64)(i64)((E##_i >> TICK_BITS) + 1023) << 52);                         \
	E = (D) > -708.0 ? E : 0;

/* pass_sum_exp returns Σ expNeg(x_i − max), added in id order as Go does
 * (float64 addition is not associative). */
SIMD double pass_sum_exp(const f32u *x, u32 n, float max) {
	double m = (double)max, sum = 0;
	v128_t mv = wasm_f64x2_splat(m), lo = wasm_f64x2_splat(-708.0), l2e = wasm_f64x2_splat(LOG2E_TICKS);
	v128_t c = wasm_f64x2_splat(LN2_OVER_TICKS), one = wasm_f64x2_splat(1), exp0 = wasm_i32x4_splat(1023);
	v128_t tmask = wasm_i32x4_splat(TICKS - 1);
	u32 i = 0;
	for (; i + 4 <= n; i += 4) {
		/* EXPN lane by lane: f64x2.pmax(-708, d) is `d > -708 ? d : -708`;
		 * t lies in [-708·LOG2E_TICKS, 0], where the i32 truncation is
		 * exact and f64x2.trunc(t) equals (double)E_i (up to the sign of
		 * a zero difference, which 1 + (±0)·c turns into the same 1);
		 * the final select keeps E where d > -708, else +0. (No
		 * i32x4→f64x2 conversion of the truncation: clang scalarizes
		 * that pair into a slow emulation without nontrapping-fptoint.) */
		v128_t w = wasm_v128_load(x + i);
		v128_t d01 = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(w), mv);
		v128_t d23 = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(w, w, 2, 3, 2, 3)), mv);
		v128_t t01 = wasm_f64x2_mul(wasm_f64x2_pmax(lo, d01), l2e), t23 = wasm_f64x2_mul(wasm_f64x2_pmax(lo, d23), l2e);
		v128_t i01 = wasm_i32x4_trunc_sat_f64x2_zero(t01), i23 = wasm_i32x4_trunc_sat_f64x2_zero(t23);
		v128_t ti = wasm_i32x4_shuffle(i01, i23, 0, 1, 4, 5);
		v128_t f01 = wasm_f64x2_add(one, wasm_f64x2_mul(wasm_f64x2_sub(t01, wasm_f64x2_trunc(t01)), c));
		v128_t f23 = wasm_f64x2_add(one, wasm_f64x2_mul(wasm_f64x2_sub(t23, wasm_f64x2_trunc(t23)), c));
		v128_t ix = wasm_v128_and(ti, tmask);
		v128_t p01 = wasm_f64x2_make(POW2TAB[wasm_i32x4_extract_lane(ix, 0)], POW2TAB[wasm_i32x4_extract_lane(ix, 1)]);
		v128_t p23 = wasm_f64x2_make(POW2TAB[wasm_i32x4_extract_lane(ix, 2)], POW2TAB[wasm_i32x4_extract_lane(ix, 3)]);
		v128_t e = wasm_i32x4_add(wasm_i32x4_shr(ti, TICK_BITS), exp0);
		p01 = wasm_f64x2_mul(wasm_f64x2_mul(p01, f01), wasm_i64x2_shl(wasm_i64x2_extend_low_i32x4(e), 52));
		p23 = wasm_f64x2_mul(wasm_f64x2_mul(p23, f23), wasm_i64x2_shl(wasm_i64x2_extend_high_i32x4(e), 52));
		p01 = wasm_v128_and(p01, wasm_f64x2_gt(d01, lo));
		p23 = wasm_v128_and(p23, wasm_f64x2_gt(d23, lo));
		sum += wasm_f64x2_extract_lane(p01, 0);
		sum += wasm_f64x2_extract_lane(p01, 1);
		sum += wasm_f64x2_extract_lane(p23, 0);
		sum += wasm_f64x2_extract_lane(p23, 1);
	}
	for (; i < n; i++) {
		double d = (double)x[i] - m;
		EXPN(d, e)
		sum += e;
	}
	return sum;
}

/* ---- top-p selection (scanAbove) ---- */

/* pass_scan_above appends to kept the ids whose order key reaches keepX's
 * and to bnd those reaching only bndX's, both ascending. Eight ids are
 * skipped together when all are below bndX as floats, which implies it
 * for the order keys (the converse fails only for ±0 and NaN, which then
 * take the exact path). */
SIMD void pass_scan_above(const f32u *x, u32 n, float keepX, float bndX, i32 *kept, u32 *nk, i32 *bnd, u32 *nb) {
	u32 keepO = f32_ord(keepX), bndO = f32_ord(bndX);
	u32 k = *nk, m = *nb, i = 0;
	v128_t bv = wasm_f32x4_splat(bndX);
	for (; i + 8 <= n; i += 8) {
		if (wasm_i32x4_all_true(wasm_v128_and(wasm_f32x4_lt(wasm_v128_load(x + i), bv), wasm_f32x4_lt(wasm_v128_load(x + i + 4), bv))))
			continue;
		for (u32 j = i; j < i + 8; j++) {
			u32 o = f32_ord(x[j]);
			if (o >= keepO) kept[k++] = (i32)j;
			else if (o >= bndO) bnd[m++] = (i32)j;
		}
	}
	for (; i < n; i++) {
		u32 o = f32_ord(x[i]);
		if (o >= keepO) kept[k++] = (i32)i;
		else if (o >= bndO) bnd[m++] = (i32)i;
	}
	*nk = k;
	*nb = m;
}

/* ---- min-p and the draw over every id ---- */

u32 pass_min_p_all(const u64 *q, u32 n, u64 thr, i32 *cand) {
	u32 k = 0;
	for (u32 i = 0; i < n; i++)
		if (q[i] >= thr) cand[k++] = (i32)i;
	return k;
}

/* pass_pick_all returns the first id whose cumulative weight exceeds r,
 * or -1; four weights at a time while the pick lies further on. */
i64 pass_pick_all(const u64 *q, u32 n, u64 r) {
	u64 cum = 0;
	u32 i = 0;
	for (; i + 4 <= n; i += 4) {
		u64 c = cum + q[i] + q[i + 1] + q[i + 2] + q[i + 3];
		if (c > r) break;
		cum = c;
	}
	for (; i < n; i++) {
		cum += q[i];
		if (cum > r) return i;
	}
	return -1;
}

/* ---- top-k (topK): a size-k min-heap, worst first ---- */

typedef struct {
	float v;
	i32 id;
} hitem;

static inline int hless(hitem a, hitem b) {
	if (a.v != b.v) return a.v < b.v;
	return a.id > b.id;
}

static void hsift(hitem *h, u32 len, u32 j) {
	for (;;) {
		u32 l = 2 * j + 1;
		if (l >= len) return;
		u32 m = l;
		if (l + 1 < len && hless(h[l + 1], h[l])) m = l + 1;
		if (!hless(h[m], h[j])) return;
		hitem t = h[j];
		h[j] = h[m];
		h[m] = t;
		j = m;
	}
}

/* pass_topk writes the ids of the k largest values of x to out, best first
 * (ties → lower id), and returns how many; heap holds k hitems. Once the
 * heap is full, id i enters only if h[0].less({x[i], i}), which (every id
 * in the heap being lower than i) is h[0].v < x[i]. */
SIMD u32 pass_topk(const f32u *x, u32 n, u32 k, i32 *out, void *heap) {
	hitem *h = heap;
	u32 len = 0, i = 0;
	if (k > n) k = n;
	for (; i < n && len < k; i++) {
		h[len++] = (hitem){x[i], (i32)i};
		for (u32 j = len - 1; j > 0;) {
			u32 p = (j - 1) / 2;
			if (!hless(h[j], h[p])) break;
			hitem t = h[j];
			h[j] = h[p];
			h[p] = t;
			j = p;
		}
	}
	for (; i + 8 <= n; i += 8) {
		/* Skip eight ids when none exceeds the worst kept value (which
		 * only an entering id changes). */
		v128_t hv = wasm_f32x4_splat(h[0].v);
		if (!wasm_v128_any_true(wasm_v128_or(wasm_f32x4_lt(hv, wasm_v128_load(x + i)), wasm_f32x4_lt(hv, wasm_v128_load(x + i + 4)))))
			continue;
		for (u32 j = i; j < i + 8; j++) {
			float v = x[j];
			if (!(h[0].v < v)) continue;
			h[0] = (hitem){v, (i32)j};
			hsift(h, len, 0);
		}
	}
	for (; i < n; i++) {
		float v = x[i];
		if (!(h[0].v < v)) continue;
		h[0] = (hitem){v, (i32)i};
		hsift(h, len, 0);
	}
	u32 m = len;
	for (u32 j = m; j-- > 0;) {
		out[j] = h[0].id;
		len--;
		h[0] = h[len];
		hsift(h, len, 0);
	}
	return m;
}
