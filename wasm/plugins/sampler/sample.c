/*
 * sample.c: wasm/sampler (sampler.go, passes.go, exp.go, rand.go) in C.
 *
 * Every function here is a port of the Go function of the same role and
 * must stay bit-identical to it: the same float32/float64 rounding points,
 * the same integer weights, the same SplitMix64 draws, the same order of
 * checks. Where Go converts a float to an integer, the conversion is the
 * one Go compiles to WebAssembly (saturating: NaN → 0), because the Go edge
 * that the host would otherwise run is that WebAssembly build; go_i64 and
 * go_u64 (sampler.h) spell it out. The passes over the whole vocabulary
 * are in passes.c, written for speed, with arguments in DESIGN.md for why
 * their results are the same.
 */
#include "sampler.h"

#define INT32_MAXV 2147483647
#define INT32_MINV (-INT32_MAXV - 1)

static const float F32_INF = __builtin_inff();

/* ---- math.Log, the pure-Go version (fdlibm's algorithm), which is what
 * Go's WebAssembly build runs ---- */

static double go_frexp(double f, i64 *exp) {
	*exp = 0;
	if (f == 0 || f != f || f - f != 0) return f; /* 0, NaN, ±Inf */
	if ((f < 0 ? -f : f) < 0x1p-1022) {
		f *= 0x1p52;
		*exp = -52;
	}
	u64 x = f64bits(f);
	*exp += (i64)((x >> 52) & 0x7ff) - 1023 + 1;
	x &= ~(0x7ffull << 52);
	x |= (u64)(-1 + 1023) << 52;
	return f64from(x);
}

static double go_log(double x) {
	const double Ln2Hi = 6.93147180369123816490e-01, Ln2Lo = 1.90821492927058770002e-10,
		     L1 = 6.666666666666735130e-01, L2 = 3.999999999940941908e-01,
		     L3 = 2.857142874366239149e-01, L4 = 2.222219843214978396e-01,
		     L5 = 1.818357216161805012e-01, L6 = 1.531383769920937332e-01,
		     L7 = 1.479819860511658591e-01;
	if (x != x || x == __builtin_inf()) return x;
	if (x < 0) return f64from(0x7FF8000000000001ull); /* Go's NaN() */
	if (x == 0) return -__builtin_inf();
	i64 ki;
	double f1 = go_frexp(x, &ki);
	if (f1 < 0x1.6a09e667f3bcdp-1) { /* Sqrt2/2 */
		f1 *= 2;
		ki--;
	}
	double f = f1 - 1;
	double k = (double)ki;
	double s = f / (2 + f);
	double s2 = s * s;
	double s4 = s2 * s2;
	double t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
	double t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
	double R = t1 + t2;
	double hfsq = 0.5 * f * f;
	return k * Ln2Hi - ((hfsq - (s * (hfsq + R) + k * Ln2Lo)) - f);
}

/* ---- rand.go ---- */

static u64 rng_next(u64 *state) {
	*state += 0x9E3779B97F4A7C15ull;
	u64 z = *state;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* mul64hi is the high half of x·y (mul64 in rand.go); no __int128, whose
 * multiplication would need compiler-rt. */
static u64 mul64hi(u64 x, u64 y) {
	const u64 mask32 = 0xffffffffull;
	u64 x0 = x & mask32, x1 = x >> 32, y0 = y & mask32, y1 = y >> 32;
	u64 w0 = x0 * y0;
	u64 t = x1 * y0 + (w0 >> 32);
	u64 w1 = t & mask32, w2 = t >> 32;
	w1 += x0 * y1;
	return x1 * y1 + w2 + (w1 >> 32);
}

static u64 rng_below(u64 *state, u64 n) { return mul64hi(rng_next(state), n); }

/* ---- scratch: one set per instance (calls never overlap), grown to the
 * largest vocabulary seen and reused by every sampler ---- */

typedef struct {
	void *p;
	u32 cap;
} buf;

static struct {
	buf x;     /* working logits (bias, penalties) */
	buf raw;   /* f16 logits decoded */
	buf q;     /* u64 weights by id */
	buf cand;  /* i32 surviving ids */
	buf kept;  /* i32 top-p result */
	buf bnd;   /* i32 top-p boundary bucket */
	buf seen;  /* i32 occurrence counts by id, kept all zero between calls */
	buf touch; /* i32 ids seen, first-seen order */
	buf heap;  /* top-k heap: {float, i32} items */
	buf hb;    /* i32 top-p buckets of the listed ids (see mass_hint) */
} S;

static u64 mass[MASS_N]; /* top-p bucket masses */

/* The weights pass lists the ids of the top-p buckets up to mass_hint
 * (the last boundary bucket plus a margin), so that top-p need not scan
 * the vocabulary again when its boundary is no deeper. Only the speed
 * depends on it. */
static i64 mass_hint = 64;
static u32 nhead;          /* ids listed (in S.cand), or ... */
static int head_ok;        /* ... 0 when there is no list */
static i64 listed_upto;    /* the list holds every id of the buckets up to this one */

static void *need(buf *b, u64 bytes, int zero) {
	if (bytes > 0x7fff0000u) return 0;
	if (b->cap < bytes || !b->p) {
		mem_free(b->p);
		b->p = mem_alloc((u32)(bytes ? bytes : 1));
		b->cap = b->p ? (u32)bytes : 0;
		if (b->p && zero) memset(b->p, 0, (usize)bytes);
	}
	return b->p;
}

/* ---- passes.go: what does not run over the whole vocabulary ---- */

static inline float f32_from_ord(u32 o) {
	if (o >> 31) return f32from(o & ~0x80000000u);
	return f32from(~o);
}

/* bucket_threshold is bucketThreshold: the smallest float32 v <= m whose
 * t = v·a − b is at least cutT and whose top-p bucket is at most k, or +Inf
 * if m's is not. */
static int bt_in(float v, i64 k, double a, double b, double cutT) {
	double t = (double)v * a - b;
	return t >= cutT && -(go_i64(t) >> BUCKET_SHIFT) <= k;
}

static float bucket_threshold(float m, i64 k, double a, double b, double cutT) {
	if (!bt_in(m, k, a, b, cutT)) return F32_INF;
	u32 lo = f32_ord(-F32_INF), hi = f32_ord(m);
	while (hi - lo > 1) {
		u32 mid = lo + (hi - lo) / 2;
		if (bt_in(f32_from_ord(mid), k, a, b, cutT)) hi = mid;
		else lo = mid;
	}
	return f32_from_ord(hi);
}

/* weight is weight, exact for any v (Go calls it only when t >= cutT; a
 * NaN from an extreme repetition penalty can reach it here as in Go). */
static u64 weight(float v, double a, double b, i64 sc) {
	return go_u64(pow2_ticks((double)v * a - b, sc));
}

/* ---- sorting ---- */

/* sort_ids sorts distinct ids ascending (slices.Sort; with distinct keys
 * every correct sort gives the same result): insertion sort when short,
 * heapsort otherwise. */
static void sort_ids(i32 *d, u32 n) {
	if (n <= 16) {
		for (u32 i = 1; i < n; i++) {
			i32 v = d[i];
			u32 j = i;
			for (; j > 0 && d[j - 1] > v; j--) d[j] = d[j - 1];
			d[j] = v;
		}
		return;
	}
	for (u32 s = n / 2; s-- > 0;) {
		for (u32 r = s;;) {
			u32 c = 2 * r + 1;
			if (c >= n) break;
			if (c + 1 < n && d[c] < d[c + 1]) c++;
			if (d[r] >= d[c]) break;
			i32 t = d[r]; d[r] = d[c]; d[c] = t;
			r = c;
		}
	}
	for (u32 e = n; e-- > 1;) {
		i32 t = d[0]; d[0] = d[e]; d[e] = t;
		for (u32 r = 0;;) {
			u32 c = 2 * r + 1;
			if (c >= e) break;
			if (c + 1 < e && d[c] < d[c + 1]) c++;
			if (d[r] >= d[c]) break;
			t = d[r]; d[r] = d[c]; d[c] = t;
			r = c;
		}
	}
}

/*
 * The top-p boundary is sorted by t descending, ties by lower id, with a
 * port of Go's slices.SortFunc (pdqsortCmpFunc, Go 1.26). For finite t the
 * order is total and any sort would do; a NaN t (only from a repetition
 * penalty outside float32's range, see DESIGN.md) makes Go's comparison
 * inconsistent, and then only the same algorithm gives the same order.
 */
typedef struct {
	const f32u *x;
	double a, b;
} bctx;

static inline int bless(const bctx *c, i32 i, i32 j) {
	double ti = (double)c->x[i] * c->a - c->b, tj = (double)c->x[j] * c->a - c->b;
	if (ti != tj) return ti > tj;
	return i - j < 0;
}

#define SWAP(d, i, j) do { i32 t_ = d[i]; d[i] = d[j]; d[j] = t_; } while (0)

static void pdq_insertion(const bctx *c, i32 *d, i64 a, i64 b) {
	for (i64 i = a + 1; i < b; i++)
		for (i64 j = i; j > a && bless(c, d[j], d[j - 1]); j--) SWAP(d, j, j - 1);
}

static void pdq_sift(const bctx *c, i32 *d, i64 lo, i64 hi, i64 first) {
	i64 root = lo;
	for (;;) {
		i64 child = 2 * root + 1;
		if (child >= hi) break;
		if (child + 1 < hi && bless(c, d[first + child], d[first + child + 1])) child++;
		if (!bless(c, d[first + root], d[first + child])) return;
		SWAP(d, first + root, first + child);
		root = child;
	}
}

static void pdq_heapsort(const bctx *c, i32 *d, i64 a, i64 b) {
	i64 first = a, lo = 0, hi = b - a;
	for (i64 i = (hi - 1) / 2; i >= 0; i--) pdq_sift(c, d, i, hi, first);
	for (i64 i = hi - 1; i >= 0; i--) {
		SWAP(d, first, first + i);
		pdq_sift(c, d, lo, i, first);
	}
}

static i64 pdq_partition(const bctx *c, i32 *d, i64 a, i64 b, i64 pivot, int *already) {
	SWAP(d, a, pivot);
	i64 i = a + 1, j = b - 1;
	while (i <= j && bless(c, d[i], d[a])) i++;
	while (i <= j && !bless(c, d[j], d[a])) j--;
	if (i > j) {
		SWAP(d, j, a);
		*already = 1;
		return j;
	}
	SWAP(d, i, j);
	i++;
	j--;
	for (;;) {
		while (i <= j && bless(c, d[i], d[a])) i++;
		while (i <= j && !bless(c, d[j], d[a])) j--;
		if (i > j) break;
		SWAP(d, i, j);
		i++;
		j--;
	}
	SWAP(d, j, a);
	*already = 0;
	return j;
}

static i64 pdq_partition_equal(const bctx *c, i32 *d, i64 a, i64 b, i64 pivot) {
	SWAP(d, a, pivot);
	i64 i = a + 1, j = b - 1;
	for (;;) {
		while (i <= j && !bless(c, d[a], d[i])) i++;
		while (i <= j && bless(c, d[a], d[j])) j--;
		if (i > j) break;
		SWAP(d, i, j);
		i++;
		j--;
	}
	return i;
}

static int pdq_partial_insertion(const bctx *c, i32 *d, i64 a, i64 b) {
	const int maxSteps = 5;
	const i64 shortestShifting = 50;
	i64 i = a + 1;
	for (int step = 0; step < maxSteps; step++) {
		while (i < b && !bless(c, d[i], d[i - 1])) i++;
		if (i == b) return 1;
		if (b - a < shortestShifting) return 0;
		SWAP(d, i, i - 1);
		if (i - a >= 2) {
			for (i64 j = i - 1; j >= 1; j--) {
				if (!bless(c, d[j], d[j - 1])) break;
				SWAP(d, j, j - 1);
			}
		}
		if (b - i >= 2) {
			for (i64 j = i + 1; j < b; j++) {
				if (!bless(c, d[j], d[j - 1])) break;
				SWAP(d, j, j - 1);
			}
		}
	}
	return 0;
}

static int bitlen(u64 x) {
	int n = 0;
	while (x) {
		n++;
		x >>= 1;
	}
	return n;
}

static void pdq_break_patterns(i32 *d, i64 a, i64 b) {
	i64 length = b - a;
	if (length >= 8) {
		u64 random = (u64)length;
		u64 modulus = 1ull << bitlen((u64)length);
		for (i64 idx = a + (length / 4) * 2 - 1; idx <= a + (length / 4) * 2 + 1; idx++) {
			random ^= random << 13;
			random ^= random >> 7;
			random ^= random << 17;
			i64 other = (i64)(random & (modulus - 1));
			if (other >= length) other -= length;
			SWAP(d, idx, a + other);
		}
	}
}

static i64 pdq_median(const bctx *c, i32 *d, i64 a, i64 b, i64 cc, int *swaps) {
	i64 t;
	if (bless(c, d[b], d[a])) { (*swaps)++; t = a; a = b; b = t; }
	if (bless(c, d[cc], d[b])) { (*swaps)++; t = b; b = cc; cc = t; }
	if (bless(c, d[b], d[a])) { (*swaps)++; t = a; a = b; b = t; }
	(void)cc;
	return b;
}

enum { HINT_UNKNOWN, HINT_INCREASING, HINT_DECREASING };

static i64 pdq_choose_pivot(const bctx *c, i32 *d, i64 a, i64 b, int *hint) {
	const i64 shortestNinther = 50;
	const int maxSwaps = 4 * 3;
	i64 l = b - a;
	int swaps = 0;
	i64 i = a + l / 4 * 1, j = a + l / 4 * 2, k = a + l / 4 * 3;
	if (l >= 8) {
		if (l >= shortestNinther) {
			i = pdq_median(c, d, i - 1, i, i + 1, &swaps);
			j = pdq_median(c, d, j - 1, j, j + 1, &swaps);
			k = pdq_median(c, d, k - 1, k, k + 1, &swaps);
		}
		j = pdq_median(c, d, i, j, k, &swaps);
	}
	*hint = swaps == 0 ? HINT_INCREASING : swaps == maxSwaps ? HINT_DECREASING : HINT_UNKNOWN;
	return j;
}

static void pdqsort(const bctx *c, i32 *d, i64 a, i64 b, int limit) {
	const i64 maxInsertion = 12;
	int wasBalanced = 1, wasPartitioned = 1;
	for (;;) {
		i64 length = b - a;
		if (length <= maxInsertion) {
			pdq_insertion(c, d, a, b);
			return;
		}
		if (limit == 0) {
			pdq_heapsort(c, d, a, b);
			return;
		}
		if (!wasBalanced) {
			pdq_break_patterns(d, a, b);
			limit--;
		}
		int hint;
		i64 pivot = pdq_choose_pivot(c, d, a, b, &hint);
		if (hint == HINT_DECREASING) {
			for (i64 i = a, j = b - 1; i < j; i++, j--) SWAP(d, i, j);
			pivot = (b - 1) - (pivot - a);
			hint = HINT_INCREASING;
		}
		if (wasBalanced && wasPartitioned && hint == HINT_INCREASING) {
			if (pdq_partial_insertion(c, d, a, b)) return;
		}
		if (a > 0 && !bless(c, d[a - 1], d[pivot])) {
			a = pdq_partition_equal(c, d, a, b, pivot);
			continue;
		}
		int already;
		i64 mid = pdq_partition(c, d, a, b, pivot, &already);
		wasPartitioned = already;
		i64 leftLen = mid - a, rightLen = b - mid, balanceThreshold = length / 8;
		if (leftLen < rightLen) {
			wasBalanced = leftLen >= balanceThreshold;
			pdqsort(c, d, a, mid, limit);
			a = mid + 1;
		} else {
			wasBalanced = rightLen >= balanceThreshold;
			pdqsort(c, d, mid + 1, b, limit);
			b = mid;
		}
	}
}

/* ---- sampler.go ---- */

static int penalizes(const sparams *p) { return p->rep != 1 || p->pres != 0 || p->freq != 0; }

/* penalize applies the repetition, presence and frequency penalties in
 * place; *touched says whether any logit changed. */
static const char *penalize(const sparams *p, float *x, u32 n, const i32 *history, u32 hlen, int *touched) {
	*touched = 0;
	if (!penalizes(p) || hlen == 0) return 0;
	const i32 *h = history;
	u32 hl = hlen;
	if (p->penalty_last_n > 0 && hl > (u32)p->penalty_last_n) {
		h += hl - (u32)p->penalty_last_n;
		hl = (u32)p->penalty_last_n;
	}
	i32 *seen = S.seen.p, *touch = S.touch.p;
	u32 nt = 0;
	const char *err = 0;
	for (u32 i = 0; i < hl; i++) {
		i32 id = h[i];
		if (id < 0 || (u32)id >= n) {
			err = "sampler: history token id out of range (vocab size)";
			break;
		}
		if (seen[id] == 0) touch[nt++] = id;
		seen[id]++;
	}
	if (!err) {
		float rep = (float)p->rep, freq = (float)p->freq, pres = (float)p->pres;
		for (u32 i = 0; i < nt; i++) {
			i32 id = touch[i];
			float v = x[id];
			if (p->rep != 1) {
				if (v > 0) v = v / rep;
				else v = v * rep;
			}
			v = v - (float)seen[id] * freq - pres;
			x[id] = v;
		}
		*touched = nt > 0;
	}
	for (u32 i = 0; i < nt; i++) seen[touch[i]] = 0;
	return err;
}

/* log_sum_exp is logSumExp: log Σ e^(x_i) in float64. */
static double log_sum_exp(const f32u *x, u32 n, float max) { return (double)max + go_log(pass_sum_exp(x, n, max)); }

/* top_p_target is topP's target: ceil(p·total) clamped to [1, total]. */
static u64 top_p_target(double top_p, u64 total) {
	u64 target = go_u64(__builtin_ceil(top_p * (double)total));
	if (target < 1) target = 1;
	if (target > total) target = total;
	return target;
}

/* boundary_within reports whether top-p's boundary bucket for target is
 * at most L, judging by the masses of buckets 0..L alone (exact: the walk
 * stops at the first bucket where the running sum reaches target). */
static int boundary_within(u64 target, i64 L) {
	u64 cum = 0;
	for (i64 bk = 0; bk <= L && bk < MASS_N - 1; bk++) {
		if (cum + mass[bk] >= target) return 1;
		cum += mass[bk];
	}
	return 0;
}

/* top_p is topP: the ascending ids of the smallest set, in descending t
 * order (ties → lower id), whose weight reaches ceil(p·total). */
static u32 top_p(const sparams *p, const f32u *x, const i32 *cand, u32 nc, int all, u32 n, u64 *q, u64 total,
		 float m, double a, double b, double cutT, i64 sc, i32 **out) {
	u64 target = top_p_target(p->top_p, total);
	u64 cum = 0;
	i64 bk = 0;
	for (; bk < MASS_N - 1; bk++) {
		if (cum + mass[bk] >= target) break;
		cum += mass[bk];
	}
	i32 *kept = S.kept.p, *bnd = S.bnd.p;
	u32 nk = 0, nb = 0;
	if (all && head_ok && bk <= listed_upto) {
		/* Every id of buckets <= bk is listed, ascending, with its
		 * weight; buckets are those of scanAbove's thresholds. */
		const i32 *hb = S.hb.p;
		for (u32 i = 0; i < nhead; i++) {
			if (hb[i] < bk) kept[nk++] = cand[i];
			else if (hb[i] == bk) bnd[nb++] = cand[i];
		}
	} else if (all) {
		float keepX = bucket_threshold(m, bk - 1, a, b, cutT);
		float bndX = bucket_threshold(m, bk, a, b, cutT);
		pass_scan_above(x, n, keepX, bndX, kept, &nk, bnd, &nb);
		for (u32 i = 0; i < nb; i++) q[bnd[i]] = weight(x[bnd[i]], a, b, sc);
		for (u32 t = 0; t < nk; t++) q[kept[t]] = weight(x[kept[t]], a, b, sc);
	} else {
		for (u32 i = 0; i < nc; i++) {
			i32 id = cand[i];
			double t = (double)x[id] * a - b;
			if (t < cutT) continue;
			i64 k = -(go_i64(t) >> BUCKET_SHIFT);
			if (k < bk) kept[nk++] = id;
			else if (k == bk) bnd[nb++] = id;
		}
	}
	bctx c = {x, a, b};
	pdqsort(&c, bnd, 0, nb, bitlen(nb));
	u32 take = 0;
	for (u32 i = 0; i < nb; i++) {
		if (cum >= target) break;
		take++;
		cum += q[bnd[i]];
	}
	/* kept is ascending (the scans visit ids in order); merge the taken
	 * boundary ids in from the back. */
	sort_ids(bnd, take);
	i64 i = (i64)nk - 1, j = (i64)take - 1;
	for (i64 w = (i64)nk + take - 1; j >= 0; w--) {
		if (i >= 0 && kept[i] > bnd[j]) kept[w] = kept[i--];
		else kept[w] = bnd[j--];
	}
	nk += take;
	if (all) mass_hint = bk + 16;
	*out = kept;
	return nk;
}

/* draw is draw: steps 6–11 on processed logits x. maxv is max(x) when
 * known (max_known). */
static const char *draw(const sparams *p, u64 *rng, const f32u *x, u32 n, int max_known, float maxv, i32 *pick_out) {
	i32 *cand = S.cand.p;
	u64 *q = S.q.p;
	u32 nc = 0;
	int all = 1;
	if (p->top_k > 0 && (u32)p->top_k < n) {
		nc = pass_topk(x, n, (u32)p->top_k, cand, S.heap.p);
		sort_ids(cand, nc);
		all = 0;
	}
	double m = -__builtin_inf();
	if (all && max_known) {
		m = (double)maxv;
	} else if (all) {
		m = (double)pass_max(x, n);
	} else {
		for (u32 i = 0; i < nc; i++) {
			double v = (double)x[cand[i]];
			if (v > m) m = v;
		}
	}
	if (m == -__builtin_inf()) return "sampler: every candidate logit is -Inf";
	double a = (1 / p->temperature) * LOG2E_TICKS;
	double b = m * a;
	i64 sc = 62 - bitlen(n);
	double cutT = -(double)(sc + 1) * TICKS;
	qparams qp = {a, b, cutT, sc, LN2_OVER_TICKS, 1};
	u64 total = 0;
	int doTopP = p->top_p < 1;
	if (doTopP) memset(mass, 0, sizeof mass);
	head_ok = 0;
	int blocks = 0; /* q holds pass_quant_blocks' block sums */
	float cutX = F32_INF;
	if (all) {
		/* A non-finite cutX (from a non-finite maximum or scale) means
		 * every t is NaN or -Inf: every weight is 0, as in Go. */
		cutX = bucket_threshold((float)m, INT32_MAXV, a, b, cutT);
		if (cutX == F32_INF) {
			if (!doTopP) memset(q, 0, (usize)n * 8);
		} else if (doTopP) {
			/* The masses of the listed buckets (at most mass_hint) come
			 * from the list; only when top-p's boundary lies deeper is
			 * the vocabulary weighed again with every bucket's mass. */
			i32 head = (i32)(-256 * mass_hint);
			float headX = bucket_threshold((float)m, mass_hint, a, b, cutT);
			total = pass_quant_head(x, n, cutX, headX, &qp, head, cand, S.hb.p, &nhead, q);
			const i32 *hb = S.hb.p;
			for (u32 i = 0; i < nhead; i++) mass[hb[i]] += q[cand[i]];
			listed_upto = mass_hint;
			if (!boundary_within(top_p_target(p->top_p, total), mass_hint)) {
				/* Rare (a flat distribution, or the first step): list
				 * every weighed id, so that every bucket's mass is known. */
				memset(mass, 0, sizeof mass);
				total = pass_quant_head(x, n, cutX, cutX, &qp, INT32_MINV, cand, S.hb.p, &nhead, q);
				for (u32 i = 0; i < nhead; i++) mass[hb[i]] += q[cand[i]];
				listed_upto = MASS_N;
			}
			head_ok = 1;
		} else if (p->min_p > 0) {
			total = pass_quant_all(x, n, q, cutX, &qp);
		} else {
			total = pass_quant_blocks(x, n, cutX, &qp, q);
			blocks = 1;
		}
	} else {
		for (u32 i = 0; i < nc; i++) {
			i32 id = cand[i];
			double t = (double)x[id] * a - b;
			u64 qv = 0;
			if (t >= cutT) {
				qv = go_u64(pow2_ticks(t, sc));
				if (doTopP) mass[-(go_i64(t) >> BUCKET_SHIFT)] += qv;
			}
			q[id] = qv;
			total += qv;
		}
	}
	int filtered = 0;
	if (doTopP) {
		nc = top_p(p, x, cand, nc, all, n, q, total, (float)m, a, b, cutT, sc, &cand);
		all = 0;
		filtered = 1;
	}
	if (p->min_p > 0) {
		/* Ldexp(mp, sc) is an exact scaling by 2^sc. */
		u64 thr = go_u64(__builtin_ceil(p->min_p * f64from((u64)(sc + 1023) << 52)));
		if (all) {
			nc = pass_min_p_all(q, n, thr, cand);
			all = 0;
		} else {
			u32 k = 0;
			for (u32 i = 0; i < nc; i++)
				if (q[cand[i]] >= thr) cand[k++] = cand[i];
			nc = k;
		}
		filtered = 1;
	}
	if (filtered) {
		total = 0;
		for (u32 i = 0; i < nc; i++) total += q[cand[i]];
	}
	if (total == 0) return "sampler: empty candidate set";
	u64 r = rng_below(rng, total);
	i64 pick = -1;
	if (all) {
		pick = blocks ? pass_pick_blocks(x, n, cutX, &qp, q, r) : pass_pick_all(q, n, r);
	} else {
		u64 cum = 0;
		u32 i = 0;
		for (; i + 4 <= nc; i += 4) {
			u64 c4 = cum + q[cand[i]] + q[cand[i + 1]] + q[cand[i + 2]] + q[cand[i + 3]];
			if (c4 > r) break;
			cum = c4;
		}
		for (; i < nc; i++) {
			cum += q[cand[i]];
			if (cum > r) {
				pick = cand[i];
				break;
			}
		}
	}
	if (pick < 0) return "sampler: draw out of range";
	*pick_out = (i32)pick;
	return 0;
}

/* grow_scratch makes the scratch buffers fit a vocabulary of n for these
 * parameters, reserving the memory for all of them at once. */
static int grow_scratch(const sparams *p, u32 n, u32 hlen, int width, int modify) {
	u64 n4 = (u64)n * 4;
	u32 k = (u32)p->top_k > (u32)p->top_logprobs ? (u32)p->top_k : (u32)p->top_logprobs;
	if (k > n) k = n;
	struct {
		buf *b;
		u64 bytes;
		int want, zero;
	} w[] = {
		{&S.q, (u64)n * 8, 1, 0},
		{&S.cand, n4, 1, 0},
		{&S.kept, n4, 1, 0},
		{&S.bnd, n4, 1, 0},
		{&S.hb, n4, p->temperature != 0 && p->top_p < 1, 0},
		{&S.raw, n4, width == 2, 0},
		{&S.x, n4, modify, 0},
		{&S.seen, n4, hlen > 0 && penalizes(p), 1},
		{&S.touch, n4, hlen > 0 && penalizes(p), 0},
		{&S.heap, (u64)k * 8, k > 0, 0},
	};
	u64 total = 0;
	for (u32 i = 0; i < sizeof w / sizeof w[0]; i++)
		if (w[i].want && (w[i].b->cap < w[i].bytes || !w[i].b->p)) total += w[i].bytes + 16;
	if (total > 0x7fff0000u || (total && !mem_reserve((u32)total))) return 0;
	for (u32 i = 0; i < sizeof w / sizeof w[0]; i++)
		if (w[i].want && !need(w[i].b, w[i].bytes, w[i].zero)) return 0;
	return 1;
}

const char *sample(sampler *s, const u8 *data, u32 n, int width, const i32 *history, u32 hlen, choice *c, int *oom) {
	const sparams *p = &s->p;
	*oom = 0;
	if (n == 0) return "sampler: empty logits";
	if (p->max_tokens > 0 && s->count >= p->max_tokens) return "sampler: max_tokens already reached";
	int modify = p->nbias > 0 || (hlen > 0 && penalizes(p));
	if (!grow_scratch(p, n, hlen, width, modify)) {
		*oom = 1;
		return "sampler: out of memory for scratch buffers";
	}
	const f32u *logits = (const f32u *)data;
	if (width == 2) {
		pass_f16(data, S.raw.p, n);
		logits = S.raw.p;
	}
	float rawMax;
	if (pass_max_finite(logits, n, &rawMax) >= 0) return "sampler: a logit is NaN or +Inf";
	if (rawMax == -F32_INF) return "sampler: every logit is -Inf";

	/* Work on a copy only when a bias or a penalty modifies logits. */
	const f32u *x = logits;
	if (modify) {
		float *w = S.x.p;
		pass_copy(w, logits, n);
		for (u32 i = 0; i < p->nbias; i++) {
			i32 id = p->bias[i].id;
			if ((u32)id >= n) return "sampler: logit_bias token id out of range (vocab size)";
			w[id] = w[id] + p->bias[i].bias;
		}
		x = w;
	}
	int touched = 0;
	if (modify) {
		const char *err = penalize(p, S.x.p, n, history, hlen, &touched);
		if (err) return err;
	}
	int max_known = !(touched || p->nbias > 0);

	if (p->temperature == 0) {
		c->id = pass_argmax(x, n, max_known ? rawMax : pass_max(x, n));
	} else {
		const char *err = draw(p, &s->rng, x, n, max_known, rawMax, &c->id);
		if (err) return err;
	}
	c->logprob = 0;
	c->ntop = 0;
	if (p->logprobs) {
		double lse = log_sum_exp(logits, n, rawMax);
		c->logprob = (float)((double)logits[c->id] - lse);
		if (p->top_logprobs > 0) {
			i32 *ids = S.cand.p;
			u32 k = pass_topk(logits, n, (u32)p->top_logprobs, ids, S.heap.p);
			for (u32 i = 0; i < k; i++) {
				c->top_id[i] = ids[i];
				c->top_lp[i] = (float)((double)logits[ids[i]] - lse);
			}
			c->ntop = k;
		}
	}
	s->count++;
	c->finish = 0;
	u32 lo = 0, hi = p->nstops;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (p->stops[mid] < c->id) lo = mid + 1;
		else hi = mid;
	}
	if (lo < p->nstops && p->stops[lo] == c->id) c->finish = 1;
	else if (p->max_tokens > 0 && s->count >= p->max_tokens) c->finish = 2;
	return 0;
}
