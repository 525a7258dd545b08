/*
 * sampler: the EdgeSeek sampler as a WebAssembly module written in C.
 *
 * It exports the sampling functions of the edge ABI (wasm/ABI.md):
 * edge_sampler_new, edge_sample and edge_release, plus the mandatory
 * edge_abi_version, edge_alloc and edge_free. The host puts it in front of
 * the Go edge (edgehost.Chain), which keeps doing everything else.
 *
 * It is a port of wasm/sampler (and of the sampling half of wasm/edge) that
 * is bit-identical to the Go edge: for the same parameters, seed, logits
 * and history it returns the same reply bytes, step after step, and it
 * rejects the same requests. It exists because Go compiled to WebAssembly
 * is slow in loops (every back-edge goes through the function's jump
 * table, see wasm/sampler/DESIGN.md): one step over DeepSeek-V4's 129,280
 * logits takes milliseconds there, and a fraction of one here.
 *
 * Files: sampler.c (this: exports, handles, requests and replies),
 * sample.c (the sampler's logic), passes.c (its passes over the whole
 * vocabulary, written for wazero), pow2tab.h (the exponential's table),
 * sampler.h; ../internal has what it shares with the C tokenizer
 * (msgpack.c: decoding as protocol.Unmarshal does, encoding as
 * protocol.Marshal does; mem.c: the allocator; abi.c: the mandatory exports
 * and the plumbing of a call). DESIGN.md explains how determinism is kept
 * and what was measured.
 *
 * Build (wasm/build.sh does it):
 *   clang --target=wasm32 -O2 -nostdlib -fno-builtin -Wall -Wextra -Werror \
 *     -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 -o sampler.wasm \
 *     *.c ../internal/abi.c ../internal/mem.c ../internal/msgpack.c
 */
#include "sampler.h"

/* Every error of the Go edge's sampling functions has code "invalid" (it
 * uses "internal" only for a recovered panic); running out of memory,
 * which kills the Go edge, is "internal". */
static u64 fail(const char *msg) { return fail_code("invalid", msg); }

static u64 oom(void) { return fail_code("internal", "sampler: out of memory"); }

/* ---- handles: like wasm/edge's Edge.put, numbered from 1 upwards, never
 * 0, skipping live ones, at most MAX_HANDLES live. An open-addressing
 * table (linear probing, backward-shift deletion) maps them to samplers. */

typedef struct {
	u32 h;
	sampler *s;
} slot;

static slot *tab;
static u32 tab_cap, tab_shift, live, next_handle;

static inline u32 home(u32 h) { return (h * 0x9E3779B1u) >> tab_shift; }

static sampler *lookup(u32 h) {
	if (h == 0 || !tab) return 0;
	for (u32 i = home(h);; i = (i + 1) & (tab_cap - 1)) {
		if (tab[i].h == h) return tab[i].s;
		if (tab[i].h == 0) return 0;
	}
}

static void put_slot(slot *t, u32 cap, u32 shift, u32 h, sampler *s) {
	u32 i = (h * 0x9E3779B1u) >> shift;
	while (t[i].h) i = (i + 1) & (cap - 1);
	t[i].h = h;
	t[i].s = s;
}

static int insert(u32 h, sampler *s) {
	if ((live + 1) * 2 > tab_cap) {
		u32 cap = tab_cap ? tab_cap * 2 : 64, shift = tab_cap ? tab_shift - 1 : 26;
		slot *t = mem_alloc(cap * sizeof(slot));
		if (!t) return 0;
		memset(t, 0, cap * sizeof(slot));
		for (u32 i = 0; i < tab_cap; i++)
			if (tab[i].h) put_slot(t, cap, shift, tab[i].h, tab[i].s);
		mem_free(tab);
		tab = t;
		tab_cap = cap;
		tab_shift = shift;
	}
	put_slot(tab, tab_cap, tab_shift, h, s);
	live++;
	return 1;
}

static sampler *remove_handle(u32 h) {
	if (h == 0 || !tab) return 0;
	u32 mask = tab_cap - 1, i = home(h);
	while (tab[i].h != h) {
		if (tab[i].h == 0) return 0;
		i = (i + 1) & mask;
	}
	sampler *s = tab[i].s;
	for (u32 j = i;;) {
		j = (j + 1) & mask;
		if (tab[j].h == 0) break;
		u32 k = home(tab[j].h);
		/* Move tab[j] into the hole unless its home lies cyclically in
		 * (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
		tab[i] = tab[j];
		i = j;
	}
	tab[i].h = 0;
	tab[i].s = 0;
	live--;
	return s;
}

static void free_sampler(sampler *s) {
	if (!s) return;
	mem_free(s->p.bias);
	mem_free(s->p.stops);
	mem_free(s);
}

/* A growable i32 list in call-lifetime scratch (history ids). */
typedef struct {
	i32 *v;
	u32 n, cap;
	int oom;
} ilist;

static int ilist_reserve(ilist *l, u64 n) {
	if (n <= l->cap) return 1;
	if (n > 0x1fffffffu) {
		l->oom = 1;
		return 0;
	}
	i32 *v = mem_alloc((u32)n * 4);
	if (!v) {
		l->oom = 1;
		return 0;
	}
	mem_free(l->v);
	l->v = v;
	l->cap = (u32)n;
	return 1;
}

/* read_ids decodes a []int32 field (nil → empty): elements truncated to
 * int32 as Go does. When keep is 0 the elements are only checked. */
static i64 read_ids(rd *r, ilist *l, u64 keep_max) {
	i64 n = mp_array_len(r, mp_code(r));
	if (r->err) return 0;
	if (n < 0) {
		l->n = 0;
		return -1;
	}
	int keep = (u64)n <= keep_max;
	if (keep && !ilist_reserve(l, (u64)n)) {
		r->err = 1;
		return 0;
	}
	for (i64 i = 0; i < n && !r->err; i++) {
		i32 v = (i32)mp_int(r, mp_code(r));
		if (keep) l->v[i] = v;
	}
	l->n = keep ? (u32)n : 0;
	return n;
}

/* ---- SamplerNew {params: SamplingParams} ---- */

/* The logit_bias map as decoded so far: distinct ids with their last
 * value, and whether an id outside [0, MaxVocab) was seen (the map then
 * holds it and fails validation, unless a nil value resets the map).
 * Past a few entries, ids are found through an open-addressing index of
 * positions + 1 (at most half full). */
static struct {
	bias_t *e;
	u32 n, cap;
	int bad, oom;
	u32 *index, icap;
} bias;

static void bias_reset(void) {
	bias.n = 0;
	bias.bad = 0;
}

static u32 bias_slot(i32 id) {
	u32 i = ((u32)id * 0x9E3779B1u) & (bias.icap - 1);
	while (bias.index[i] && bias.e[bias.index[i] - 1].id != id) i = (i + 1) & (bias.icap - 1);
	return i;
}

/* bias_reindex rebuilds the index for every entry, growing it to keep
 * it at most half full. */
static int bias_reindex(void) {
	u32 cap = 64;
	while (cap < 2 * bias.n) cap *= 2;
	if (cap > bias.icap) {
		u32 *idx = mem_alloc(cap * 4);
		if (!idx) return 0;
		mem_free(bias.index);
		bias.index = idx;
		bias.icap = cap;
	}
	memset(bias.index, 0, bias.icap * 4);
	for (u32 i = 0; i < bias.n; i++) bias.index[bias_slot(bias.e[i].id)] = i + 1;
	return 1;
}

static void bias_put(i32 id, float v) {
	if (bias.oom) return;
	if (id < 0 || id >= MAX_VOCAB) {
		bias.bad = 1;
		return;
	}
	if (bias.n > 16) {
		u32 at = bias.index[bias_slot(id)];
		if (at) {
			bias.e[at - 1].bias = v;
			return;
		}
	} else {
		for (u32 i = 0; i < bias.n; i++)
			if (bias.e[i].id == id) {
				bias.e[i].bias = v;
				return;
			}
	}
	if (bias.n == bias.cap) {
		u32 cap = bias.cap ? bias.cap * 2 : 16;
		bias_t *e = mem_alloc(cap * sizeof(bias_t));
		if (!e) {
			bias.oom = 1;
			return;
		}
		if (bias.n) memcpy(e, bias.e, bias.n * sizeof(bias_t));
		mem_free(bias.e);
		bias.e = e;
		bias.cap = cap;
	}
	bias.e[bias.n].id = id;
	bias.e[bias.n].bias = v;
	bias.n++;
	if (bias.n == 17 || (bias.n > 17 && 2 * bias.n > bias.icap)) {
		if (!bias_reindex()) bias.oom = 1;
	} else if (bias.n > 17) {
		bias.index[bias_slot(id)] = bias.n;
	}
}

typedef struct {
	double temperature, top_p, min_p, rep, pres, freq;
	i32 top_k, penalty_last_n, max_tokens, top_logprobs;
	int logprobs;
	u64 seed;
	i64 nstops; /* length of the stop_tokens array (kept only up to 1024) */
	ilist stops;
} rawparams;

static void params_zero(void *o) {
	rawparams *p = o;
	ilist stops = p->stops;
	memset(p, 0, sizeof *p);
	stops.n = 0;
	p->stops = stops;
	bias_reset();
}

#define FLOAT_FIELD(fname, member) \
	static void fname(rd *r, void *o) { ((rawparams *)o)->member = mp_f64(r, mp_code(r)); }
#define INT32_FIELD(fname, member) \
	static void fname(rd *r, void *o) { ((rawparams *)o)->member = (i32)mp_int(r, mp_code(r)); }

FLOAT_FIELD(f_temperature, temperature)
FLOAT_FIELD(f_top_p, top_p)
FLOAT_FIELD(f_min_p, min_p)
FLOAT_FIELD(f_rep, rep)
FLOAT_FIELD(f_pres, pres)
FLOAT_FIELD(f_freq, freq)
INT32_FIELD(f_top_k, top_k)
INT32_FIELD(f_penalty_last_n, penalty_last_n)
INT32_FIELD(f_max_tokens, max_tokens)
INT32_FIELD(f_top_logprobs, top_logprobs)

static void f_seed(rd *r, void *o) { ((rawparams *)o)->seed = (u64)mp_int(r, mp_code(r)); }
static void f_logprobs(rd *r, void *o) { ((rawparams *)o)->logprobs = mp_bool(r, mp_code(r)); }

static void f_logit_bias(rd *r, void *o) {
	(void)o;
	i64 n = mp_typed_map_len(r);
	if (r->err) return;
	if (n < 0) {
		bias_reset();
		return;
	}
	for (i64 i = 0; i < n && !r->err; i++) {
		i32 id = (i32)mp_int(r, mp_code(r));
		float v = mp_f32(r, mp_code(r));
		if (!r->err) bias_put(id, v);
	}
}

static void f_stop_tokens(rd *r, void *o) {
	rawparams *p = o;
	i64 n = read_ids(r, &p->stops, MAX_STOP_TOKENS);
	p->nstops = n < 0 ? 0 : n;
	if (p->stops.oom) r->err = 1;
}

/* SamplingParams, fields in declaration order (the array form). */
static const field params_fields[] = {
	{"temperature", f_temperature},
	{"top_k", f_top_k},
	{"top_p", f_top_p},
	{"min_p", f_min_p},
	{"repetition_penalty", f_rep},
	{"presence_penalty", f_pres},
	{"frequency_penalty", f_freq},
	{"penalty_last_n", f_penalty_last_n},
	{"logit_bias", f_logit_bias},
	{"stop_tokens", f_stop_tokens},
	{"max_tokens", f_max_tokens},
	{"seed", f_seed},
	{"logprobs", f_logprobs},
	{"top_logprobs", f_top_logprobs},
};

static void f_params(rd *r, void *o) { decode_struct(r, params_fields, 14, o, params_zero); }

static const field sampler_new_fields[] = {{"params", f_params}};

static int finite(double v) { return v == v && v - v == 0; }

/* validate_params is SamplingParams.Validate (sampler.New checks the
 * same); it returns NULL or the message. */
static const char *validate_params(const rawparams *p) {
	if (!finite(p->temperature) || p->temperature < 0) return "sampler_new: sampling.temperature must be finite and >= 0";
	if (p->top_k < 0) return "sampler_new: sampling.top_k < 0";
	if (!(p->top_p >= 0 && p->top_p <= 1)) return "sampler_new: sampling.top_p not in [0, 1]";
	if (!(p->min_p >= 0 && p->min_p <= 1)) return "sampler_new: sampling.min_p not in [0, 1]";
	if (!finite(p->rep) || p->rep < 0) return "sampler_new: sampling.repetition_penalty must be finite and >= 0";
	if (!(p->pres >= -2 && p->pres <= 2)) return "sampler_new: sampling.presence_penalty not in [-2, 2]";
	if (!(p->freq >= -2 && p->freq <= 2)) return "sampler_new: sampling.frequency_penalty not in [-2, 2]";
	if (p->penalty_last_n < 0) return "sampler_new: sampling.penalty_last_n < 0";
	if (p->max_tokens < 0) return "sampler_new: sampling.max_tokens < 0";
	if (p->top_logprobs < 0 || p->top_logprobs > MAX_TOP_LOGPROBS) return "sampler_new: sampling.top_logprobs not in [0, 20]";
	if (p->top_logprobs > 0 && !p->logprobs) return "sampler_new: sampling.top_logprobs needs logprobs";
	if (p->nstops > MAX_STOP_TOKENS) return "sampler_new: sampling.stop_tokens: oversize";
	if (bias.bad) return "sampler_new: sampling.logit_bias token id out of range";
	for (u32 i = 0; i < bias.n; i++)
		if (!(bias.e[i].bias >= -100 && bias.e[i].bias <= 100)) return "sampler_new: sampling.logit_bias value not in [-100, 100]";
	for (u32 i = 0; i < p->stops.n; i++)
		if (p->stops.v[i] < 0 || p->stops.v[i] >= MAX_VOCAB) return "sampler_new: sampling.stop_tokens id out of range";
	return 0;
}

static ilist stops_scratch, history_scratch;

static u64 handle_reply(u32 h) {
	wr w = {0};
	w_byte(&w, 0);
	w_map(&w, 1);
	w_cstr(&w, "handle");
	w_byte(&w, 0xce);
	w_be(&w, h, 4);
	return respond(&w);
}

EXPORT("edge_sampler_new") u64 edge_sampler_new(u32 ptr, u32 len) {
	const u8 *b = (const u8 *)(usize)ptr;
	if (!valid_buffer(ptr, len)) return fail("sampler_new: request outside memory");
	if (len > MAX_FRAME) return fail("sampler_new: request: oversize");
	if (!mp_well_formed(b, len)) return fail("sampler_new: malformed msgpack");
	rawparams p;
	memset(&p, 0, sizeof p);
	p.stops = stops_scratch;
	p.stops.n = 0;
	bias_reset();
	bias.oom = 0;
	rd r = {b, b + len, 0};
	decode_struct(&r, sampler_new_fields, 1, &p, params_zero);
	stops_scratch = p.stops;
	stops_scratch.oom = 0;
	if (bias.oom || p.stops.oom) return oom();
	if (r.err) return fail("sampler_new: malformed SamplerNew request (wrong type, unknown field or truncated)");
	const char *err = validate_params(&p);
	if (err) return fail(err);
	if (live >= MAX_HANDLES) return fail("sampler_new: 65536 live handles, release some first");

	sampler *s = mem_alloc(sizeof(sampler));
	if (!s) return oom();
	memset(s, 0, sizeof *s);
	sparams *sp = &s->p;
	sp->temperature = p.temperature;
	sp->top_k = p.top_k;
	sp->top_p = p.top_p == 0 ? 1 : p.top_p;
	sp->min_p = p.min_p;
	sp->rep = p.rep == 0 ? 1 : p.rep;
	sp->pres = p.pres;
	sp->freq = p.freq;
	sp->penalty_last_n = p.penalty_last_n;
	sp->max_tokens = p.max_tokens;
	sp->seed = p.seed;
	sp->logprobs = p.logprobs;
	sp->top_logprobs = p.top_logprobs;
	s->rng = p.seed;
	if (bias.n) {
		sp->bias = mem_alloc(bias.n * sizeof(bias_t));
		if (!sp->bias) {
			free_sampler(s);
			return oom();
		}
		memcpy(sp->bias, bias.e, bias.n * sizeof(bias_t));
		sp->nbias = bias.n;
	}
	bias_reset();
	if (p.stops.n) {
		/* A set: ascending and distinct, for a binary search per step. */
		sp->stops = mem_alloc(p.stops.n * 4);
		if (!sp->stops) {
			free_sampler(s);
			return oom();
		}
		u32 k = 0;
		for (u32 i = 0; i < p.stops.n; i++) {
			i32 v = p.stops.v[i];
			u32 j = k;
			for (; j > 0 && sp->stops[j - 1] > v; j--) sp->stops[j] = sp->stops[j - 1];
			if (j > 0 && sp->stops[j - 1] == v) {
				for (; j < k; j++) sp->stops[j] = sp->stops[j + 1];
				continue;
			}
			sp->stops[j] = v;
			k++;
		}
		sp->nstops = k;
	}
	u32 h;
	for (;;) {
		next_handle++;
		if (next_handle != 0 && !lookup(next_handle)) break;
	}
	h = next_handle;
	if (!insert(h, s)) {
		free_sampler(s);
		return oom();
	}
	return handle_reply(h);
}

/* ---- SampleRequest {handle, f32 | f16, history} ---- */

typedef struct {
	u32 handle;
	const u8 *f32, *f16;
	i64 n32, n16; /* byte lengths, -1 for nil */
	ilist history;
} sreq;

static void sreq_zero(void *o) {
	sreq *q = o;
	ilist h = q->history;
	memset(q, 0, sizeof *q);
	h.n = 0;
	q->history = h;
}

static void f_handle(rd *r, void *o) { ((sreq *)o)->handle = (u32)mp_int(r, mp_code(r)); }

static const u8 *read_bytes(rd *r, i64 *n) {
	*n = mp_bytes_len(r, mp_code(r));
	if (r->err || *n <= 0) return 0;
	return mp_take(r, (u32)*n);
}

static void f_f32(rd *r, void *o) { ((sreq *)o)->f32 = read_bytes(r, &((sreq *)o)->n32); }
static void f_f16(rd *r, void *o) { ((sreq *)o)->f16 = read_bytes(r, &((sreq *)o)->n16); }

static void f_history(rd *r, void *o) {
	sreq *q = o;
	read_ids(r, &q->history, ~0ull);
	if (q->history.oom) r->err = 1;
}

static const field sample_fields[] = {
	{"handle", f_handle},
	{"f32", f_f32},
	{"f16", f_f16},
	{"history", f_history},
};

static u64 sample_reply(const choice *c) {
	wr w = {0};
	u32 nf = 1 + (c->logprob != 0) + (c->ntop > 0) + (c->finish != 0);
	union { float f; u32 u; } fb;
	w_byte(&w, 0);
	w_map(&w, nf);
	w_cstr(&w, "id");
	w_byte(&w, 0xd2);
	w_be(&w, (u32)c->id, 4);
	if (c->logprob != 0) {
		w_cstr(&w, "logprob");
		w_byte(&w, 0xca);
		fb.f = c->logprob;
		w_be(&w, fb.u, 4);
	}
	if (c->ntop > 0) {
		w_cstr(&w, "top");
		w_array(&w, c->ntop);
		for (u32 i = 0; i < c->ntop; i++) {
			w_map(&w, 2);
			w_cstr(&w, "id");
			w_byte(&w, 0xd2);
			w_be(&w, (u32)c->top_id[i], 4);
			w_cstr(&w, "logprob");
			w_byte(&w, 0xca);
			fb.f = c->top_lp[i];
			w_be(&w, fb.u, 4);
		}
	}
	if (c->finish) {
		w_cstr(&w, "finish");
		w_cstr(&w, c->finish == 1 ? "stop" : "length");
	}
	return respond(&w);
}

static u64 sample_call(u32 ptr, u32 len);

EXPORT("edge_sample") u64 edge_sample(u32 ptr, u32 len) {
	u64 r = sample_call(ptr, len);
	if (history_scratch.cap > (1u << 20)) {
		/* After a rare huge history, give its buffer back. */
		mem_free(history_scratch.v);
		history_scratch.v = 0;
		history_scratch.cap = 0;
	}
	return r;
}

static u64 sample_call(u32 ptr, u32 len) {
	const u8 *b = (const u8 *)(usize)ptr;
	if (!valid_buffer(ptr, len)) return fail("sample: request outside memory");
	if (len > MAX_FRAME) return fail("sample: request: oversize");
	if (!mp_well_formed(b, len)) return fail("sample: malformed msgpack");
	sreq q;
	memset(&q, 0, sizeof q);
	q.history = history_scratch;
	q.history.n = 0;
	rd r = {b, b + len, 0};
	decode_struct(&r, sample_fields, 4, &q, sreq_zero);
	history_scratch = q.history;
	history_scratch.oom = 0;
	if (q.history.oom) return oom();
	if (r.err) return fail("sample: malformed SampleRequest (wrong type, unknown field or truncated)");
	i64 n32 = q.n32 > 0 ? q.n32 : 0, n16 = q.n16 > 0 ? q.n16 : 0;
	if ((n32 == 0) == (n16 == 0)) return fail("sample: sample.logits: exactly one of f32 and f16 must be set");
	if (n32 % 4 != 0 || n16 % 2 != 0) return fail("sample: sample.logits: length is not a whole number of floats");
	if (n32 > 4ll * MAX_VOCAB || n16 > 2ll * MAX_VOCAB) return fail("sample: sample.logits: oversize");
	if (q.handle == 0) return fail("sample: sample.handle is 0");
	for (u32 i = 0; i < q.history.n; i++)
		if (q.history.v[i] < 0 || q.history.v[i] >= MAX_VOCAB) return fail("sample: sample.history id out of range");
	sampler *s = lookup(q.handle);
	if (!s) return fail("sample: handle is not a live sampler: bad handle");
	choice c;
	int out_of_memory;
	const char *err = n32 ? sample(s, q.f32, (u32)(n32 / 4), 4, q.history.v, q.history.n, &c, &out_of_memory)
			      : sample(s, q.f16, (u32)(n16 / 2), 2, q.history.v, q.history.n, &c, &out_of_memory);
	if (out_of_memory) return oom();
	if (err) return fail(err);
	return sample_reply(&c);
}

/* ---- HandleRequest {handle} ---- */

static void f_release_handle(rd *r, void *o) { *(u32 *)o = (u32)mp_int(r, mp_code(r)); }

static void handle_zero(void *o) { *(u32 *)o = 0; }

static const field release_fields[] = {{"handle", f_release_handle}};

EXPORT("edge_release") u64 edge_release(u32 ptr, u32 len) {
	const u8 *b = (const u8 *)(usize)ptr;
	if (!valid_buffer(ptr, len)) return fail("release: request outside memory");
	if (len > MAX_FRAME) return fail("release: request: oversize");
	if (!mp_well_formed(b, len)) return fail("release: malformed msgpack");
	u32 h = 0;
	rd r = {b, b + len, 0};
	decode_struct(&r, release_fields, 1, &h, handle_zero);
	if (r.err) return fail("release: malformed HandleRequest (wrong type, unknown field or truncated)");
	if (h == 0) return fail("release: handle_request.handle is 0");
	sampler *s = remove_handle(h);
	if (!s) return fail("release: handle is not live: bad handle");
	free_sampler(s);
	wr w = {0};
	w_byte(&w, 0);
	w_map(&w, 0);
	return respond(&w);
}
