/*
 * encode.c: text to ids, as wasm/tokenizer's Encode computes them (and so
 * as Hugging Face tokenizers does for DeepSeek's tokenizer.json):
 *
 *   1. added tokens, leftmost-longest, normalized=false ones first, then
 *      normalized=true ones in the text between them;
 *   2. the pre-tokenizer, DeepSeek's three Split patterns (Isolated) in one
 *      pass: \p{N}{1,3} chunks; segments of non-digits that share the CJK
 *      bit; the main alternation within each segment, alternative by
 *      alternative at each position, as a backtracking engine tries them;
 *   3. byte-level BPE on each piece, through a word cache.
 *
 * The rules are written out in wasm/tokenizer/DESIGN.md; this file follows
 * the plain three-stage reference of wasm/tokenizer/pretok_ref_test.go,
 * fused into one pass, rather than the Go scanner (whose piece batches and
 * one-load ASCII pieces work around Go's WebAssembly code generation).
 * Only the long runs go eight bytes a step (ASCII letters, spaces, the
 * search for added tokens), because the host's instrumentation charges
 * every loop iteration. DESIGN.md has the measurements.
 */
#include "tokenizer.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef u64 u64u __attribute__((aligned(1)));
typedef u32 u32u __attribute__((aligned(1)));

static inline u64 load64(const u8 *p) { return *(const u64u *)p; }
static inline u32 load32(const u8 *p) { return *(const u32u *)p; }

/* ---- bytes: hash and comparison without reading past the end ---- */

#define MUL 0x9E3779B97F4A7C15ull

u32 bytes_hash(const u8 *s, u32 n) {
	u64 h = (u64)n * MUL, w;
	u32 i = 0;
	for (; i + 8 <= n; i += 8) h = (h ^ load64(s + i)) * MUL, h ^= h >> 29;
	if (i < n) {
		if (n >= 8) w = load64(s + n - 8); /* overlaps what was hashed: fine */
		else if (n >= 4) w = (u64)load32(s) << 32 | load32(s + n - 4);
		else w = (u64)s[0] << 16 | (u64)s[n >> 1] << 8 | s[n - 1];
		h = (h ^ w) * MUL;
	}
	h ^= h >> 32;
	return (u32)(h * MUL >> 32);
}

int bytes_eq(const u8 *a, const u8 *b, u32 n) {
	u32 i = 0;
	for (; i + 8 <= n; i += 8)
		if (load64(a + i) != load64(b + i)) return 0;
	for (; i < n; i++)
		if (a[i] != b[i]) return 0;
	return 1;
}

/* ---- UTF-8 (Go's utf8.ValidString: no overlongs, surrogates or code
 * points above U+10FFFF) ---- */

static int utf8_valid(const u8 *s, u32 n) {
	u32 i = 0;
	while (i < n) {
		/* ASCII eight bytes at a time */
		while (i + 8 <= n && (load64(s + i) & 0x8080808080808080ull) == 0) i += 8;
		if (i >= n) break;
		u8 c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		u32 need;
		u8 lo = 0x80, hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) need = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0) lo = 0xA0;
			if (c == 0xED) hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0) lo = 0x90;
			if (c == 0xF4) hi = 0x8F;
		} else return 0;
		if (n - i - 1 < need) return 0;
		if (s[i + 1] < lo || s[i + 1] > hi) return 0;
		for (u32 k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80) return 0;
		i += need + 1;
	}
	return 1;
}

/* ---- classes ---- */

static u32 class_high(const tok *t, u32 cp) {
	u32 lo = 0, hi = t->nhigh;
	while (lo < hi) {
		u32 m = (lo + hi) >> 1;
		if (t->high[3 * m + 1] < cp) lo = m + 1;
		else hi = m;
	}
	return lo < t->nhigh && t->high[3 * lo] <= cp ? t->high[3 * lo + 2] : 0;
}

/* class_at returns the class bits of the code point at s[i] (valid UTF-8)
 * and its width. */
ALWAYS_INLINE u32 class_at(const tok *t, const u8 *s, u32 i, u32 *w) {
	u32 c = s[i];
	if (c < 0x80) {
		*w = 1;
		return t->classes[c];
	}
	u32 cp;
	if (c < 0xE0) {
		*w = 2;
		cp = (c & 0x1F) << 6 | (s[i + 1] & 0x3F);
	} else if (c < 0xF0) {
		*w = 3;
		cp = (c & 0x0F) << 12 | (u32)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
	} else {
		*w = 4;
		cp = (c & 0x07) << 18 | (u32)(s[i + 1] & 0x3F) << 12 | (u32)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
	}
	return cp < TABLE_RUNES ? t->classes[cp] : class_high(t, cp);
}

/* ---- the encoder's state for one call ---- */

typedef struct {
	tok *t;
	const u8 *s;
	u32 len;    /* of s */
	ids *out;   /* room for one id per input byte, and 4 more, was made up front */
	u32 *heap_next, *heap_prev, *heap_rank, *heap_res; /* BPE scratch, heap_cap each */
	u64 *heap;
	u32 heap_cap;
	int oom;
} enc;

static inline void push(enc *e, i32 id) { e->out->v[e->out->n++] = id; }

/* ---- BPE ---- */

static inline u64 pair_get(const tok *t, i32 a, i32 b) {
	u64 k = (u64)(u32)a << 32 | (u32)b;
	const u64 *kv = t->pairs;
	for (u32 i = (u32)((k * MUL) >> 20) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
		if (kv[2 * i] == k) return kv[2 * i + 1];
		if (kv[2 * i] == PAIR_EMPTY) return (u64)NO_RANK << 32;
	}
}

#define SMALL_WORD 16

/* merge_small applies merges to ids[0:n] by scanning an array of pair
 * ranks for the lowest, leftmost first; it returns the new length. */
static u32 merge_small(const tok *t, i32 *v, u32 n) {
	u32 rk[SMALL_WORD];
	i32 rs[SMALL_WORD];
	for (u32 i = 0; i + 1 < n; i++) {
		u64 p = pair_get(t, v[i], v[i + 1]);
		rk[i] = (u32)(p >> 32), rs[i] = (i32)(u32)p;
	}
	for (;;) {
		u32 best = 0, br = NO_RANK;
		for (u32 i = 0; i + 1 < n; i++)
			if (rk[i] < br) best = i, br = rk[i];
		if (br == NO_RANK) return n;
		v[best] = rs[best];
		n--;
		for (u32 i = best + 1; i < n; i++) v[i] = v[i + 1], rk[i] = rk[i + 1], rs[i] = rs[i + 1];
		if (best > 0) {
			u64 p = pair_get(t, v[best - 1], v[best]);
			rk[best - 1] = (u32)(p >> 32), rs[best - 1] = (i32)(u32)p;
		}
		if (best + 1 < n) {
			u64 p = pair_get(t, v[best], v[best + 1]);
			rk[best] = (u32)(p >> 32), rs[best] = (i32)(u32)p;
		} else rk[best] = NO_RANK;
	}
}

static int heap_reserve(enc *e, u32 n) {
	if (e->heap_cap >= n) return 1;
	u32 cap = n + n / 2;
	mem_free(e->heap_next), mem_free(e->heap_prev), mem_free(e->heap_rank), mem_free(e->heap_res), mem_free(e->heap);
	e->heap_next = mem_alloc(cap * 4), e->heap_prev = mem_alloc(cap * 4);
	e->heap_rank = mem_alloc(cap * 4), e->heap_res = mem_alloc(cap * 4);
	e->heap = mem_alloc(cap * 8 * 2); /* each merge pushes at most two entries */
	if (!e->heap_next || !e->heap_prev || !e->heap_rank || !e->heap_res || !e->heap) {
		e->heap_cap = 0;
		return 0;
	}
	e->heap_cap = cap;
	return 1;
}

static void heap_push(u64 *h, u32 *n, u64 x) {
	u32 i = (*n)++;
	while (i > 0) {
		u32 p = (i - 1) / 2;
		if (h[p] <= x) break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static u64 heap_pop(u64 *h, u32 *n) {
	u64 top = h[0], x = h[--*n];
	u32 i = 0, m = *n;
	for (;;) {
		u32 c = 2 * i + 1;
		if (c >= m) break;
		if (c + 1 < m && h[c + 1] < h[c]) c++;
		if (x <= h[c]) break;
		h[i] = h[c];
		i = c;
	}
	if (m) h[i] = x;
	return top;
}

/* merge_heap is HF's Word::merge_all for longer words: symbols in a linked
 * list, candidate pairs in a binary heap of rank<<32|position (one integer
 * orders by rank, then leftmost). rank[p] is the current rank of the pair
 * starting at p (NO_RANK once p is merged away); an entry whose rank
 * differs is stale (a position's symbol only grows, so it never returns to
 * an earlier pair). */
static u32 merge_heap(enc *e, i32 *v, u32 n) {
	const tok *t = e->t;
	if (!heap_reserve(e, n)) {
		e->oom = 1;
		return n;
	}
	u32 *next = e->heap_next, *prev = e->heap_prev, *rank = e->heap_rank, *res = e->heap_res;
	u64 *h = e->heap;
	u32 hn = 0;
	for (u32 i = 0; i < n; i++) {
		next[i] = i + 1, prev[i] = i - 1; /* prev of 0 and next of n-1: out of range */
		rank[i] = NO_RANK;
		if (i + 1 < n) {
			u64 p = pair_get(t, v[i], v[i + 1]);
			rank[i] = (u32)(p >> 32), res[i] = (u32)p;
			if (rank[i] != NO_RANK) heap_push(h, &hn, (u64)rank[i] << 32 | i);
		}
	}
	while (hn) {
		u64 top = heap_pop(h, &hn);
		u32 i = (u32)top, r = (u32)(top >> 32);
		if (rank[i] != r) continue;
		u32 j = next[i];
		v[i] = (i32)res[i];
		rank[j] = NO_RANK;
		u32 k = next[j];
		next[i] = k;
		if (k < n) prev[k] = i;
		if (i > 0 && prev[i] < n) {
			u32 p = prev[i];
			u64 q = pair_get(t, v[p], v[i]);
			rank[p] = (u32)(q >> 32), res[p] = (u32)q;
			if (rank[p] != NO_RANK) heap_push(h, &hn, (u64)rank[p] << 32 | p);
		}
		rank[i] = NO_RANK;
		if (k < n) {
			u64 q = pair_get(t, v[i], v[k]);
			rank[i] = (u32)(q >> 32), res[i] = (u32)q;
			if (rank[i] != NO_RANK) heap_push(h, &hn, (u64)rank[i] << 32 | i);
		}
	}
	u32 w = 0;
	for (u32 i = 0; i < n; i = next[i]) v[w++] = v[i];
	return w;
}

/* bpe writes the ids of piece p[0:n] to dst (room for n) and returns how
 * many: wasm/tokenizer's encoder.piece. */
static u32 bpe(enc *e, const u8 *p, u32 n, i32 *dst) {
	const tok *t = e->t;
	if (t->ignore_merges && t->vslot) {
		for (u32 h = bytes_hash(p, n) & t->vmask;; h = (h + 1) & t->vmask) {
			u32 k = t->vslot[h];
			if (!k) break;
			const u32 *o = t->ventry + 3 * (k - 1);
			if (o[1] == n && bytes_eq(t->varena + o[0], p, n)) {
				dst[0] = (i32)o[2];
				return 1;
			}
		}
	}
	u32 k = 0;
	for (u32 i = 0; i < n; i++) {
		i32 id = t->byte_id[p[i]];
		if (id < 0) {
			/* HF's BPE drops a character missing from the vocabulary when
			 * there is no unk token, and fuses repeated unks if asked. */
			if (t->unk < 0) continue;
			if (t->fuse_unk && k > 0 && dst[k - 1] == t->unk) continue;
			id = t->unk;
		}
		dst[k++] = id;
	}
	if (k < 2) return k;
	return k <= SMALL_WORD ? merge_small(t, dst, k) : merge_heap(e, dst, k);
}

/* ---- pieces, through the word cache ---- */

/* A piece's key is its first 16 bytes as two words (zero-padded) and its
 * length; nearly all pieces are shorter, so a lookup is two loads, a few
 * multiplies and one comparison, with no loop. */
static const u64 LOW_BYTES[9] = {0, 0xff, 0xffff, 0xffffff, 0xffffffffull, 0xffffffffffull, 0xffffffffffffull,
				 0xffffffffffffffull, ~0ull};

ALWAYS_INLINE void key_words(const u8 *p, u32 n, u32 room, u64 *w0, u64 *w1) {
	if (room >= 16) { /* two loads and masks: bytes past the piece are in the text */
		*w0 = load64(p) & LOW_BYTES[n < 8 ? n : 8];
		*w1 = load64(p + 8) & LOW_BYTES[n < 8 ? 0 : n < 16 ? n - 8 : 8];
		return;
	}
	u64 x0 = 0, x1 = 0; /* the end of the text: byte by byte */
	for (u32 i = 0; i < n && i < 16; i++) {
		if (i < 8) x0 |= (u64)p[i] << (8 * i);
		else x1 |= (u64)p[i] << (8 * (i - 8));
	}
	*w0 = x0, *w1 = x1;
}

ALWAYS_INLINE u32 key_set(u64 w0, u64 w1, u32 n) {
	u64 h = (w0 * MUL) ^ ((w1 + n) * 0xC2B2AE3D27D4EB4Full);
	h ^= h >> 31;
	return (u32)((h * MUL) >> 51); /* CACHE_SETS = 2^13 */
}

static void piece_miss(enc *e, const u8 *p, u32 n, u64 w0, u64 w1, cslot *set);

/* piece appends the ids of s[a:b]. */
ALWAYS_INLINE void piece(enc *e, u32 a, u32 b) {
	tok *t = e->t;
	const u8 *p = e->s + a;
	u32 n = b - a;
	ids *out = e->out;
	if (n == 1 && t->byte_id[*p] >= 0) {
		out->v[out->n++] = t->byte_id[*p];
		return;
	}
	if (n > CACHE_MAX_LEN) {
		out->n += bpe(e, p, n, out->v + out->n);
		return;
	}
	u64 w0, w1;
	key_words(p, n, e->len - a, &w0, &w1);
	/* Longer pieces (CJK runs, mostly) often share their first 16 bytes:
	 * their set depends on the rest too. */
	u64 tail = n > 16 ? bytes_hash(p + 16, n - 16) : 0;
	cslot *set = t->cache + key_set(w0, w1 ^ tail, n) * CACHE_WAYS;
	for (u32 w = 0; w < CACHE_WAYS; w++) {
		cslot *c = &set[w];
		if (((c->w0 ^ w0) | (c->w1 ^ w1) | (u64)(c->len ^ n)) != 0) continue;
		const cext *x = c->ext;
		if (n > 16 && !bytes_eq((const u8 *)(x->ids + x->n) + 16, p + 16, n - 16)) continue;
		i32 *o = out->v + out->n;
		const i32 *src = x ? x->ids : c->ids;
		u32 k = c->n;
		o[0] = src[0], o[1] = src[1], o[2] = src[2], o[3] = src[3]; /* room and padding for four */
		for (u32 i = 4; i < k; i++) o[i] = src[i];
		out->n += k;
		if (w > 0) { /* most recently used first */
			cslot hit = *c;
			for (; w > 0; w--) set[w] = set[w - 1];
			set[0] = hit;
		}
		return;
	}
	piece_miss(e, p, n, w0, w1, set);
}

/* cext_class is the size class of the extension of a piece of n bytes and
 * k ids. */
static inline u32 cext_class(u32 n, u32 k) { return ((u32)sizeof(cext) + 4 * (k < 4 ? 4 : k) + n + 15) / 16; }

/* piece_miss merges a piece the cache does not hold and caches it in place
 * of its set's least recently used slot. */
static void piece_miss(enc *e, const u8 *p, u32 n, u64 w0, u64 w1, cslot *set) {
	tok *t = e->t;
	ids *out = e->out;
	i32 *o = out->v + out->n;
	u32 k = bpe(e, p, n, o);
	out->n += k;
	cext *old = set[CACHE_WAYS - 1].ext;
	if (old) { /* keep it for reuse */
		u32 oc = cext_class(old->len, old->n);
		*(cext **)old->ids = t->spare[oc];
		t->spare[oc] = old;
	}
	for (u32 w = CACHE_WAYS - 1; w > 0; w--) set[w] = set[w - 1];
	cslot *c = &set[0];
	memset(c, 0, sizeof *c);
	if (n <= 16 && k <= SLOT_IDS) {
		for (u32 i = 0; i < k; i++) c->ids[i] = o[i];
	} else {
		u32 cls = cext_class(n, k);
		cext *x = t->spare[cls];
		if (x) t->spare[cls] = *(cext **)x->ids;
		else x = mem_alloc(cls * 16);
		if (!x) return; /* not cached (an empty slot): the ids are right anyway */
		u32 padded = k < 4 ? 4 : k;
		x->len = n, x->n = k;
		for (u32 i = 0; i < padded; i++) x->ids[i] = i < k ? o[i] : 0;
		memcpy(x->ids + k, p, n);
		c->ext = x;
	}
	c->w0 = w0, c->w1 = w1, c->len = (u16)n, c->n = (u16)k;
}

/* ---- the pre-tokenizer ---- */

static inline int ascii_letter(u8 c) { return (u8)((c | 0x20) - 'a') < 26; }

/* A segment (stage 2's unit) is a run of code points that are not \p{N}
 * and share the CJK bit k (0 or C_CJK): nothing of stage 3 reaches past
 * its end. */
#define IN_SEG(c, k) (((c) & (C_N | C_CJK)) == (k))

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* ascii_letters8 returns how many of the 8 bytes at p, from the first, are
 * ASCII letters (the only ASCII code points of \p{L} or \p{M}). */
ALWAYS_INLINE u32 ascii_letters8(const u8 *p) {
	u64 w = load64(p);
	u64 x = (w | 0x2020202020202020ull) & 0x7f7f7f7f7f7f7f7full; /* lower case, 7 bits: no carries below */
	u64 ge_a = (x + ONES * (0x80 - 'a')) & HIGHS, gt_z = (x + ONES * (0x80 - 'z' - 1)) & HIGHS;
	u64 not_letter = ~(ge_a & ~gt_z & ~w) & HIGHS;
	return not_letter ? (u32)__builtin_ctzll(not_letter) / 8 : 8;
}

/* run returns the end of the run from i of code points of segment k whose
 * class has a bit of mask (never C_N). */
ALWAYS_INLINE u32 run(const tok *t, const u8 *s, u32 i, u32 b, u32 mask, u32 k) {
	if (k == 0) { /* ASCII is never CJK, and mask has no digits */
		if (mask & C_L)
			for (u32 m = 8; m == 8 && i + 8 <= b; i += m) m = ascii_letters8(s + i);
		while (i < b && s[i] < 0x80 && (t->classes[s[i]] & mask)) i++;
	}
	while (i < b) {
		u32 w, c = class_at(t, s, i, &w);
		if (!(c & mask) || !IN_SEG(c, k)) break;
		i += w;
	}
	return i;
}

#define NO_MATCH (~0u)

/* match_at tries the main alternation anchored at i, whose code point has
 * class c0 and width n0, in segment k that continues at most to b,
 * alternatives in order as a backtracking engine tries them; it returns
 * the match's end or NO_MATCH.
 *   [!-/:-@[-`{-~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ |
 *    ?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+            */
ALWAYS_INLINE u32 match_at(const tok *t, const u8 *s, u32 i, u32 b, u32 k, u32 c0, u32 n0) {
	u8 ch = s[i];
	if (ch < 0x80 && (c0 & (C_P | C_S)) && i + 1 < b && ascii_letter(s[i + 1])) {
		u32 j = i + 2;
		while (j < b && ascii_letter(s[j])) j++;
		return j;
	}
	/* the optional prefix first (greedy), then without it */
	if (!(c0 & (C_CRLF | C_L | C_P | C_S)) && i + n0 < b) {
		u32 w1, c1 = class_at(t, s, i + n0, &w1);
		if ((c1 & (C_L | C_M)) && IN_SEG(c1, k)) return run(t, s, i + n0 + w1, b, C_L | C_M, k);
	}
	if (c0 & (C_L | C_M)) return run(t, s, i + n0, b, C_L | C_M, k);
	/* only U+0020 is the optional space; \r and \n belong to no CJK
	 * segment */
	u32 j = NO_MATCH;
	if (ch == ' ') {
		if (i + 1 < b) {
			u32 w, c = class_at(t, s, i + 1, &w);
			if ((c & (C_P | C_S)) && IN_SEG(c, k)) j = run(t, s, i + 1 + w, b, C_P | C_S, k);
		}
	} else if (c0 & (C_P | C_S)) j = run(t, s, i + n0, b, C_P | C_S, k);
	if (j != NO_MATCH) {
		if (k == 0)
			while (j < b && (s[j] == '\r' || s[j] == '\n')) j++;
		return j;
	}
	if (!(c0 & C_SPACE)) return NO_MATCH;
	/* the white-space run [i, e) (never CJK or a digit); last: start of
	 * its final code point; nl: one past its last \r or \n */
	u32 e = i, last = i, nl = NO_MATCH, w, c = 0;
	while (e < b) {
		if (e + 8 <= b && load64(s + e) == ONES * ' ') { /* indentation, eight spaces a step */
			last = e + 7, e += 8;
			continue;
		}
		c = class_at(t, s, e, &w);
		if (!(c & C_SPACE)) break;
		if (c & C_CRLF) nl = e + 1;
		last = e;
		e += w;
	}
	if (nl != NO_MATCH) return nl; /* \s*[\r\n]+: \s* backs off to the last newline */
	/* \s+(?!\S) at the segment's end, or \s+ of one code point */
	if (e == b || !IN_SEG(c, k) || last == i) return e;
	return last; /* \s+(?!\S): the run but its last code point */
}

/* plain pre-tokenizes and encodes s[a:b], text without added tokens, in
 * one pass: \p{N}{1,3} chunks cut from the left; between them segments,
 * each split by the main alternation (matches and the gaps between them
 * are pieces). */
static void plain(enc *e, u32 a, u32 b) {
	const tok *t = e->t;
	const u8 *s = e->s;
	u32 i = a, w, c;
	if (i < b) c = class_at(t, s, i, &w);
	while (i < b) { /* c, w: the code point at i */
		if (c & C_N) {
			u32 start = i, cnt = 0;
			for (;;) {
				i += w;
				if (++cnt == 3) {
					piece(e, start, i);
					start = i, cnt = 0;
				}
				if (i >= b) break;
				c = class_at(t, s, i, &w);
				if (!(c & C_N)) break;
			}
			if (start < i) piece(e, start, i);
			continue;
		}
		u32 k = c & C_CJK, gap = i;
		for (;;) {
			u32 end = match_at(t, s, i, b, k, c, w);
			if (end != NO_MATCH) {
				if (gap < i) piece(e, gap, i);
				piece(e, i, end);
				i = gap = end;
			} else i += w;
			if (i >= b) break;
			c = class_at(t, s, i, &w);
			if (!IN_SEG(c, k)) break;
		}
		if (gap < i) piece(e, gap, i);
	}
}

/* ---- added tokens ---- */

/* longest_at returns the id of the longest token of tr starting at s[i]
 * within [i, b), and its end in *end; -1 if none. */
static i32 longest_at(const trie *tr, const u8 *s, u32 i, u32 b, u32 *end) {
	u32 node = 0;
	i32 best = -1;
	for (u32 j = i; j < b; j++) {
		u32 c = tr->nodes[node].child;
		while (c && tr->nodes[c].b < s[j]) c = tr->nodes[c].sibling;
		if (!c || tr->nodes[c].b != s[j]) break;
		node = c;
		if (tr->nodes[node].id >= 0) best = tr->nodes[node].id, *end = j + 1;
	}
	return best;
}

/* split finds tr's tokens in s[a:b], leftmost-longest, and hands the text
 * between them to gap. */
static void split(enc *e, const trie *tr, u32 a, u32 b, void (*gap)(enc *, u32, u32)) {
	if (tr->n <= 1) {
		if (a < b) gap(e, a, b);
		return;
	}
	const u8 *s = e->s;
	u32 g = a, i = a;
	while (i < b) {
		if (tr->only >= 0) { /* eight bytes a step: a zero byte of x marks c */
			u8 c = (u8)tr->only;
			for (; i + 8 <= b; i += 8) {
				u64 x = load64(s + i) ^ (ONES * c);
				if ((x - ONES) & ~x & HIGHS) break;
			}
			while (i < b && s[i] != c) i++;
		} else {
			while (i < b && !tr->first[s[i]]) i++;
		}
		if (i == b) break;
		u32 end;
		i32 id = longest_at(tr, s, i, b, &end);
		if (id < 0) {
			i++;
			continue;
		}
		if (g < i) gap(e, g, i);
		push(e, id);
		i = g = end;
	}
	if (g < b) gap(e, g, b);
}

static void split_norm(enc *e, u32 a, u32 b) { split(e, &e->t->norm, a, b, plain); }

/* ---- the call ---- */

static enc scratch; /* BPE scratch kept across calls */

int tok_encode(tok *t, const u8 *text, u32 n, ids *out) {
	if (!utf8_valid(text, n)) return -1;
	/* At most one id per byte: a piece never has more ids than bytes, an
	 * added token is at least one byte. */
	u32 need = out->n + n + 4; /* 4: piece copies cached ids four at a time */
	if (out->cap < need) {
		i32 *v = mem_alloc(need * 4);
		if (!v) {
			out->oom = 1;
			return 0;
		}
		memcpy(v, out->v, out->n * 4);
		mem_free(out->v);
		out->v = v;
		out->cap = need;
	}
	scratch.t = t;
	scratch.s = text;
	scratch.len = n;
	scratch.out = out;
	scratch.oom = 0;
	split(&scratch, &t->raw, 0, n, split_norm);
	if (scratch.oom) out->oom = 1;
	return 0;
}
