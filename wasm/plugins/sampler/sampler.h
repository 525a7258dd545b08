/*
 * sampler.h: declarations shared by the files of the EdgeSeek sampler
 * module (see sampler.c for what the module is and DESIGN.md for how it
 * stays bit-identical to wasm/sampler).
 */
#ifndef EDGESEEK_SAMPLER_H
#define EDGESEEK_SAMPLER_H

/* Every float operation must round exactly where Go's does: no fused
 * multiply-adds (wasm has none, but say so), no reassociation (clang never
 * reassociates without -ffast-math). */
#pragma STDC FP_CONTRACT OFF

#include "../internal/plugin.h"

/* Logits read in place from a request may sit at any byte offset: an
 * under-aligned float makes clang emit loads with alignment hint 1, which
 * are exact and, on the hosts wazero targets, as fast as aligned ones. */
typedef float f32u __attribute__((aligned(1)));

/* protocol limits (protocol/messages.go, wasm/edge) */
#define MAX_VOCAB (1 << 20)
#define MAX_TOP_LOGPROBS 20
#define MAX_STOP_TOKENS 1024

/* ---- shared by sample.c and passes.c: exp.go and the conversions ---- */

#define TICKS 4096
#define TICK_BITS 12
#define BUCKET_SHIFT 8
/* QBLOCK ids share one partial sum in pass_quant_blocks. */
#define QBLOCK 256
#define MASS_N (64 * (1 << (TICK_BITS - BUCKET_SHIFT)) + 2)

#define LOG2E_TICKS (1.4426950408889634 * TICKS)
#define LN2_OVER_TICKS (0.6931471805599453 / TICKS)

extern const double POW2TAB[4096]; /* pow2tab.h, in passes.c */

static inline u32 f32bits(float f) {
	union { float f; u32 u; } v = {f};
	return v.u;
}
static inline float f32from(u32 u) {
	union { u32 u; float f; } v = {u};
	return v.f;
}
static inline u64 f64bits(double d) {
	union { double d; u64 u; } v = {d};
	return v.u;
}
static inline double f64from(u64 u) {
	union { u64 u; double d; } v = {u};
	return v.d;
}

/* go_i64 is int64(x) as Go compiles it to WebAssembly
 * (i64.trunc_sat_f64_s: NaN → 0, out of range → the nearest bound). */
static inline i64 go_i64(double x) {
	if (!(x == x)) return 0;
	if (x >= 0x1p63) return (i64)0x7fffffffffffffffll;
	if (x <= -0x1p63) return (i64)(-0x7fffffffffffffffll - 1);
	return __builtin_wasm_trunc_s_i64_f64(x);
}

/* go_u64 is uint64(x) as Go compiles it to WebAssembly
 * (i64.trunc_sat_f64_u). */
static inline u64 go_u64(double x) {
	if (!(x > -1.0)) return 0;
	if (x >= 0x1p64) return ~0ull;
	return __builtin_wasm_trunc_u_i64_f64(x);
}

/* pow2_ticks is exp.go's pow2Ticks for any t: 2^(t/4096 + e). */
static inline double pow2_ticks(double t, i64 e) {
	i64 ti = go_i64(t);
	double r = (t - (double)ti) * LN2_OVER_TICKS;
	u64 ex = ((u64)(ti >> TICK_BITS) + (u64)e + 1023u) << 52;
	return (POW2TAB[ti & (TICKS - 1)] * (1 + r)) * f64from(ex);
}

/* f32_ord maps a float32 to a uint32 in the same order (passes.go's
 * f32Ord): -Inf < … < -0 < +0 < … < +Inf, NaNs outside. */
static inline u32 f32_ord(float f) {
	u32 u = f32bits(f);
	return u ^ ((u32)((i32)u >> 31) | 0x80000000u);
}

/* qparams are draw's t = v·a − b parameters: weight scale 2^sc, cut at
 * t < cutT (weight 0). */
typedef struct {
	double a, b, cutT;
	i64 sc;
	double c, one; /* LN2_OVER_TICKS and 1, as values: see passes.c */
} qparams;

/* ---- passes.c: the passes over the whole vocabulary ---- */

i64 pass_max_finite(const f32u *x, u32 n, float *max);
float pass_max(const f32u *x, u32 n);
i32 pass_argmax(const f32u *x, u32 n, float m);
void pass_f16(const u8 *src, float *dst, u32 n);
void pass_copy(float *dst, const f32u *src, u32 n);
u64 pass_quant_head(const f32u *x, u32 n, float cutX, float headX, const qparams *qp, i32 head, i32 *hl, i32 *hb, u32 *nh, u64 *q);
u64 pass_quant_blocks(const f32u *x, u32 n, float cutX, const qparams *qp, u64 *bsum);
i64 pass_pick_blocks(const f32u *x, u32 n, float cutX, const qparams *qp, const u64 *bsum, u64 r);
u64 pass_quant_all(const f32u *x, u32 n, u64 *q, float cutX, const qparams *qp);
void pass_scan_above(const f32u *x, u32 n, float keepX, float bndX, i32 *kept, u32 *nk, i32 *bnd, u32 *nb);
u32 pass_min_p_all(const u64 *q, u32 n, u64 thr, i32 *cand);
i64 pass_pick_all(const u64 *q, u32 n, u64 r);
u32 pass_topk(const f32u *x, u32 n, u32 k, i32 *out, void *heap);
double pass_sum_exp(const f32u *x, u32 n, float max);

/* ---- sample.c ---- */

typedef struct {
	i32 id;
	float bias;
} bias_t;

/* sparams are wasm/sampler.Params after sampler.New: defaults filled in
 * (top_p 0 → 1, repetition_penalty 0 → 1). */
typedef struct {
	double temperature, top_p, min_p, rep, pres, freq;
	i32 top_k, penalty_last_n, max_tokens, top_logprobs;
	int logprobs;
	u64 seed;
	bias_t *bias;
	u32 nbias;
	i32 *stops; /* ascending, distinct */
	u32 nstops;
} sparams;

typedef struct {
	sparams p;
	u64 rng;   /* SplitMix64 state */
	i64 count; /* tokens produced */
} sampler;

typedef struct {
	i32 id;
	float logprob;
	u32 ntop;
	i32 top_id[MAX_TOP_LOGPROBS];
	float top_lp[MAX_TOP_LOGPROBS];
	int finish; /* 0 none, 1 stop, 2 length */
} choice;

/* sample is wasm/sampler.(*Sampler).Sample. logits is f32 (width 4) or f16
 * (width 2) little-endian data; history holds hlen ids. It returns NULL or
 * an error message (code "invalid"); *oom is set when scratch memory could
 * not be allocated. */
const char *sample(sampler *s, const u8 *logits, u32 n, int width, const i32 *history, u32 hlen, choice *c, int *oom);

#endif
