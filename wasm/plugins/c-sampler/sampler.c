/*
 * c-sampler: an example third-party EdgeSeek edge plugin written in C.
 *
 * It implements only the sampling functions of the edge ABI (wasm/ABI.md):
 * edge_sampler_new, edge_sample and edge_release, plus the mandatory
 * edge_abi_version, edge_alloc and edge_free. The host discovers that it
 * exports nothing else and keeps using the Go edge for the rest.
 *
 * Sampling: temperature 0 is greedy (lowest id on ties); otherwise top-k
 * (k = params.top_k clamped to 1..64, 0 meaning 40) with temperature,
 * drawn with its own SplitMix64 generator seeded by params.seed. Other
 * parameters are ignored.
 *
 * Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o c-sampler.wasm sampler.c
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define EXPORT(name) __attribute__((export_name(name)))
#define MAX_K 64
#define MAX_SAMPLERS 64
#define PAGE 65536u

/* ---- memory: a bump allocator that resets when everything is freed ---- */

extern u8 __heap_base;
static u32 heap_top;
static u32 live;

EXPORT("edge_abi_version") u32 edge_abi_version(void) { return 1; }

EXPORT("edge_alloc") u32 edge_alloc(u32 size) {
	if (heap_top == 0) heap_top = (u32)&__heap_base;
	u32 p = (heap_top + 7u) & ~7u;
	if (size > 0x7fffffffu - p) return 0;
	u32 end = p + (size ? size : 1);
	u32 have = (u32)__builtin_wasm_memory_size(0) * PAGE;
	if (end > have) {
		u32 need = (end - have + PAGE - 1) / PAGE;
		if (__builtin_wasm_memory_grow(0, need) == (unsigned long)-1) return 0;
	}
	heap_top = end;
	live++;
	return p;
}

EXPORT("edge_free") void edge_free(u32 ptr) {
	if (ptr == 0 || live == 0) return;
	if (--live == 0) heap_top = (u32)&__heap_base;
}

/* ---- a minimal msgpack reader ---- */

typedef struct {
	const u8 *p, *end;
	int err;
} rd;

static u64 be(rd *r, int n) {
	u64 v = 0;
	if (r->end - r->p < n) { r->err = 1; return 0; }
	for (int i = 0; i < n; i++) v = v << 8 | *r->p++;
	return v;
}

static int byte_(rd *r) {
	if (r->p >= r->end) { r->err = 1; return 0; }
	return *r->p++;
}

static double rd_num(rd *r) {
	int c = byte_(r);
	if (c <= 0x7f) return c;
	if (c >= 0xe0) return (double)(c - 256);
	union { u32 u; float f; } f32;
	union { u64 u; double d; } f64;
	switch (c) {
	case 0xca: f32.u = (u32)be(r, 4); return f32.f;
	case 0xcb: f64.u = be(r, 8); return f64.d;
	case 0xcc: return (double)be(r, 1);
	case 0xcd: return (double)be(r, 2);
	case 0xce: return (double)be(r, 4);
	case 0xcf: return (double)be(r, 8);
	case 0xd0: return (double)(signed char)be(r, 1);
	case 0xd1: return (double)(short)be(r, 2);
	case 0xd2: return (double)(int)be(r, 4);
	case 0xd3: return (double)(i64)be(r, 8);
	}
	r->err = 1;
	return 0;
}

static u64 rd_u64(rd *r) {
	const u8 *save = r->p;
	int c = byte_(r);
	if (c == 0xcf) return be(r, 8);
	r->p = save;
	double d = rd_num(r);
	if (d < 0) { r->err = 1; return 0; }
	return (u64)d;
}

static u32 rd_len(rd *r, int fixlo, int fixhi, int mask, int c8, int c16, int c32) {
	int c = byte_(r);
	if (c >= fixlo && c <= fixhi) return (u32)(c & mask);
	if (c8 && c == c8) return (u32)be(r, 1);
	if (c == c16) return (u32)be(r, 2);
	if (c == c32) return (u32)be(r, 4);
	r->err = 1;
	return 0;
}

static u32 rd_map(rd *r) { return rd_len(r, 0x80, 0x8f, 0x0f, 0, 0xde, 0xdf); }

/* rd_raw reads a str or bin and returns its bytes. */
static const u8 *rd_raw(rd *r, u32 *n) {
	int c = r->p < r->end ? *r->p : 0;
	if ((c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb)
		*n = rd_len(r, 0xa0, 0xbf, 0x1f, 0xd9, 0xda, 0xdb);
	else
		*n = rd_len(r, 0x100, 0x100, 0, 0xc4, 0xc5, 0xc6);
	if (r->err || (u32)(r->end - r->p) < *n) { r->err = 1; return 0; }
	const u8 *s = r->p;
	r->p += *n;
	return s;
}

static void skip(rd *r, int depth) {
	if (depth > 16 || r->p >= r->end) { r->err = 1; return; }
	int c = *r->p;
	u32 n;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) { r->p++; return; }
	if ((c >= 0xa0 && c <= 0xbf) || (c >= 0xc4 && c <= 0xc6) || (c >= 0xd9 && c <= 0xdb)) { rd_raw(r, &n); return; }
	if ((c >= 0xca && c <= 0xd3)) { rd_num(r); return; }
	if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		n = rd_map(r);
		for (u32 i = 0; i < 2 * n && !r->err; i++) skip(r, depth + 1);
		return;
	}
	if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
		n = rd_len(r, 0x90, 0x9f, 0x0f, 0, 0xdc, 0xdd);
		for (u32 i = 0; i < n && !r->err; i++) skip(r, depth + 1);
		return;
	}
	r->err = 1;
}

static int key_is(const u8 *k, u32 n, const char *s) {
	u32 i = 0;
	for (; i < n; i++)
		if (s[i] == 0 || s[i] != (char)k[i]) return 0;
	return s[i] == 0;
}

/* ---- responses ---- */

static u64 respond(const u8 *b, u32 n) {
	u32 p = edge_alloc(n);
	if (p == 0) return 0;
	u8 *d = (u8 *)p;
	for (u32 i = 0; i < n; i++) d[i] = b[i];
	return (u64)p << 32 | n;
}

static u64 fail(const char *msg) {
	u8 b[256];
	u32 n = 0, m = 0;
	const char *head = "\x01\x82\xa4" "code" "\xa7" "invalid" "\xa7" "message";
	for (const char *s = head; *s; s++) b[n++] = (u8)*s;
	while (msg[m] && m < 200) m++;
	b[n++] = 0xd9;
	b[n++] = (u8)m;
	for (u32 i = 0; i < m; i++) b[n++] = (u8)msg[i];
	return respond(b, n);
}

/* ok_uint answers {key: v} with a uint32 value. */
static u64 ok_uint(const char *key, u32 v) {
	u8 b[32];
	u32 n = 0, k = 0;
	while (key[k]) k++;
	b[n++] = 0x00;
	b[n++] = 0x81;
	b[n++] = (u8)(0xa0 | k);
	for (u32 i = 0; i < k; i++) b[n++] = (u8)key[i];
	b[n++] = 0xce;
	b[n++] = (u8)(v >> 24); b[n++] = (u8)(v >> 16); b[n++] = (u8)(v >> 8); b[n++] = (u8)v;
	return respond(b, n);
}

/* ---- sampling ---- */

typedef struct {
	int used;
	double temperature;
	u32 k;
	u64 state;
} sampler;

static sampler samplers[MAX_SAMPLERS];

static u64 splitmix64(u64 *s) {
	u64 z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* exp for x <= 0 without libm: x = n·ln2 + r, |r| <= ln2/2, Taylor on r. */
static double exp_neg(double x) {
	if (x < -700) return 0;
	const double ln2 = 0.6931471805599453;
	int n = (int)(x / ln2 - 0.5);
	double r = x - n * ln2;
	double s = 1 + r * (1 + r / 2 * (1 + r / 3 * (1 + r / 4 * (1 + r / 5 * (1 + r / 6 * (1 + r / 7 * (1 + r / 8)))))));
	union { u64 u; double d; } p;
	p.u = (u64)(n + 1023) << 52;
	return s * p.d;
}

static float half_to_float(unsigned h) {
	u32 sign = (u32)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0) {
		if (man == 0) bits = sign;
		else {
			exp = 127 - 15 + 1;
			while (!(man & 0x400)) { man <<= 1; exp--; }
			bits = sign | exp << 23 | (man & 0x3ff) << 13;
		}
	} else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
	else bits = sign | (exp + 127 - 15) << 23 | man << 13;
	union { u32 u; float f; } f;
	f.u = bits;
	return f.f;
}

EXPORT("edge_sampler_new") u64 edge_sampler_new(u32 ptr, u32 len) {
	rd r = {(const u8 *)ptr, (const u8 *)ptr + len, 0};
	double temperature = 0;
	i64 k = 0;
	u64 seed = 0;
	u32 n = rd_map(&r);
	for (u32 i = 0; i < n && !r.err; i++) {
		u32 kl;
		const u8 *key = rd_raw(&r, &kl);
		if (r.err) break;
		if (!key_is(key, kl, "params")) { skip(&r, 0); continue; }
		u32 m = rd_map(&r);
		for (u32 j = 0; j < m && !r.err; j++) {
			const u8 *pk = rd_raw(&r, &kl);
			if (r.err) break;
			if (key_is(pk, kl, "temperature")) temperature = rd_num(&r);
			else if (key_is(pk, kl, "top_k")) k = (i64)rd_num(&r);
			else if (key_is(pk, kl, "seed")) seed = rd_u64(&r);
			else skip(&r, 0);
		}
	}
	if (r.err) return fail("c-sampler: malformed sampler_new request");
	if (!(temperature >= 0 && temperature < 1e6)) return fail("c-sampler: temperature out of range");
	for (u32 h = 0; h < MAX_SAMPLERS; h++) {
		if (samplers[h].used) continue;
		samplers[h].used = 1;
		samplers[h].temperature = temperature;
		samplers[h].k = k <= 0 ? 40 : k > MAX_K ? MAX_K : (u32)k;
		samplers[h].state = seed;
		return ok_uint("handle", h + 1);
	}
	return fail("c-sampler: too many samplers");
}

EXPORT("edge_sample") u64 edge_sample(u32 ptr, u32 len) {
	rd r = {(const u8 *)ptr, (const u8 *)ptr + len, 0};
	u64 handle = 0;
	const u8 *logits = 0;
	u32 nbytes = 0, width = 0;
	u32 n = rd_map(&r);
	for (u32 i = 0; i < n && !r.err; i++) {
		u32 kl;
		const u8 *key = rd_raw(&r, &kl);
		if (r.err) break;
		if (key_is(key, kl, "handle")) handle = rd_u64(&r);
		else if (key_is(key, kl, "f32")) { logits = rd_raw(&r, &nbytes); width = 4; }
		else if (key_is(key, kl, "f16")) { logits = rd_raw(&r, &nbytes); width = 2; }
		else skip(&r, 0);
	}
	if (r.err) return fail("c-sampler: malformed sample request");
	if (handle == 0 || handle > MAX_SAMPLERS || !samplers[handle - 1].used) return fail("c-sampler: bad sampler handle");
	if (!logits || nbytes < width || nbytes % width) return fail("c-sampler: missing logits");
	sampler *s = &samplers[handle - 1];
	u32 vocab = nbytes / width;

	/* top-k by insertion into a small array sorted by logit desc, id asc */
	float val[MAX_K];
	u32 id[MAX_K];
	u32 kk = s->temperature == 0 ? 1 : s->k, have = 0;
	for (u32 t = 0; t < vocab; t++) {
		float x;
		if (width == 4) {
			union { u32 u; float f; } f;
			const u8 *b = logits + 4 * t;
			f.u = (u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24;
			x = f.f;
		} else {
			const u8 *b = logits + 2 * t;
			x = half_to_float((unsigned)b[0] | (unsigned)b[1] << 8);
		}
		if (x != x) continue; /* NaN */
		if (have == kk && !(x > val[have - 1])) continue;
		u32 j = have < kk ? have++ : kk - 1;
		while (j > 0 && x > val[j - 1]) { val[j] = val[j - 1]; id[j] = id[j - 1]; j--; }
		val[j] = x;
		id[j] = t;
	}
	if (have == 0) return fail("c-sampler: all logits are NaN");
	if (kk == 1) return ok_uint("id", id[0]);

	double w[MAX_K], total = 0;
	for (u32 j = 0; j < have; j++) {
		w[j] = exp_neg(((double)val[j] - (double)val[0]) / s->temperature);
		total += w[j];
	}
	double u = (double)(splitmix64(&s->state) >> 11) * (1.0 / 9007199254740992.0) * total;
	u32 pick = have - 1;
	for (u32 j = 0; j < have; j++) {
		if (u < w[j]) { pick = j; break; }
		u -= w[j];
	}
	return ok_uint("id", id[pick]);
}

EXPORT("edge_release") u64 edge_release(u32 ptr, u32 len) {
	rd r = {(const u8 *)ptr, (const u8 *)ptr + len, 0};
	u64 handle = 0;
	u32 n = rd_map(&r);
	for (u32 i = 0; i < n && !r.err; i++) {
		u32 kl;
		const u8 *key = rd_raw(&r, &kl);
		if (r.err) break;
		if (key_is(key, kl, "handle")) handle = rd_u64(&r);
		else skip(&r, 0);
	}
	if (r.err || handle == 0 || handle > MAX_SAMPLERS || !samplers[handle - 1].used) return fail("c-sampler: bad handle");
	samplers[handle - 1].used = 0;
	static const u8 empty[] = {0x00, 0x80};
	return respond(empty, sizeof empty);
}
