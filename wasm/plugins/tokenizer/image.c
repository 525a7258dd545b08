/*
 * image.c: loading a tokenizer image (wasm/tokenizer/IMAGE.md) into the
 * tables encode.c uses. The image comes from another module, so every
 * count, length, id and range is checked before it is used: a malformed
 * image is an error that says which field at which byte, never a trap.
 */
#include "tokenizer.h"

/* ---- error messages (no libc: a fixed buffer and a number writer) ---- */

static char errbuf[200];

static u32 put_str(u32 at, const char *s) {
	while (*s && at + 1 < sizeof errbuf) errbuf[at++] = *s++;
	errbuf[at] = 0;
	return at;
}

static u32 put_u32(u32 at, u32 v) {
	char d[10];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && at + 1 < sizeof errbuf) errbuf[at++] = d[--n];
	errbuf[at] = 0;
	return at;
}

/* ---- reading ---- */

typedef struct {
	const u8 *b;
	u32 off, n;
	const char *err;
	int oom;
} ird;

/* bad records the first error: "image: <what> at byte <off>". */
static void bad(ird *r, const char *what, u32 at) {
	if (r->err) return;
	u32 k = put_str(0, "image: ");
	k = put_str(k, what);
	k = put_str(k, " at byte ");
	put_u32(k, at);
	r->err = errbuf;
}

static u32 rd32(ird *r, const char *what) {
	if (r->err) return 0;
	if (r->n - r->off < 4) {
		bad(r, what, r->off);
		return 0;
	}
	const u8 *p = r->b + r->off;
	r->off += 4;
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* count reads an entry count and checks that that many entries of at least
 * min_size bytes each fit in what is left. */
static u32 count(ird *r, const char *what, u32 min_size) {
	u32 at = r->off, c = rd32(r, what);
	if (!r->err && (u64)c * min_size > r->n - r->off) bad(r, what, at);
	return r->err ? 0 : c;
}

/* id reads a token id: below MAX_IDS, or none (0xFFFFFFFF → -1) when
 * allow_none. */
static i32 id(ird *r, const char *what, int allow_none) {
	u32 at = r->off, v = rd32(r, what);
	if (r->err) return -1;
	if (v == ~0u && allow_none) return -1;
	if (v >= MAX_IDS) {
		bad(r, what, at);
		return -1;
	}
	return (i32)v;
}

/* bytes reads a length and that many bytes, padded to a multiple of 4. */
static const u8 *bytes(ird *r, const char *what, u32 *len) {
	u32 at = r->off;
	*len = rd32(r, what);
	if (r->err) return 0;
	u32 padded = (*len + 3u) & ~3u;
	if (*len == 0 || *len > MAX_FRAME || padded > r->n - r->off) {
		bad(r, what, at);
		return 0;
	}
	const u8 *p = r->b + r->off;
	r->off += padded;
	return p;
}

static void *alloc(ird *r, u32 size) {
	void *p = mem_alloc(size);
	if (!p && size) r->oom = 1;
	return p;
}

/* ---- merges ---- */

static u32 pair_home(u64 k, u32 mask) { return (u32)((k * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

static void load_pairs(ird *r, tok *t) {
	u32 n = count(r, "merges count", 16);
	u32 size = 16;
	while (size < 2 * n) size <<= 1;
	t->pairs = alloc(r, size * 16);
	if (!t->pairs) return;
	t->pair_mask = size - 1;
	for (u32 i = 0; i < 2 * size; i += 2) t->pairs[i] = PAIR_EMPTY, t->pairs[i + 1] = 0;
	for (u32 e = 0; e < n && !r->err; e++) {
		i32 a = id(r, "merge: first id", 0), b = id(r, "merge: second id", 0);
		u32 at = r->off, rank = rd32(r, "merge: rank");
		if (!r->err && rank >= NO_RANK) bad(r, "merge: rank", at);
		i32 res = id(r, "merge: result id", 0);
		if (r->err) return;
		u64 k = (u64)(u32)a << 32 | (u32)b, v = (u64)rank << 32 | (u32)res;
		u32 s = pair_home(k, t->pair_mask);
		while (t->pairs[2 * s] != PAIR_EMPTY && t->pairs[2 * s] != k) s = (s + 1) & t->pair_mask;
		t->pairs[2 * s] = k;
		t->pairs[2 * s + 1] = v;
	}
}

/* ---- added tokens ---- */

static int trie_add(ird *r, trie *tr, const u8 *s, u32 len, i32 tid, u32 *cap) {
	if (tr->n == 1) tr->only = s[0];
	else if (tr->only != s[0]) tr->only = -1;
	tr->first[s[0]] = 1;
	u32 node = 0;
	for (u32 i = 0; i < len; i++) {
		u32 c = tr->nodes[node].child, prev = 0;
		while (c && tr->nodes[c].b < s[i]) prev = c, c = tr->nodes[c].sibling;
		if (c && tr->nodes[c].b == s[i]) {
			node = c;
			continue;
		}
		if (tr->n == *cap) {
			u32 nc = *cap * 2;
			tnode *nn = alloc(r, nc * sizeof(tnode));
			if (!nn) return 0;
			memcpy(nn, tr->nodes, tr->n * sizeof(tnode));
			mem_free(tr->nodes);
			tr->nodes = nn;
			*cap = nc;
		}
		u32 k = tr->n++;
		tr->nodes[k] = (tnode){.child = 0, .sibling = c, .id = -1, .b = s[i]};
		if (prev) tr->nodes[prev].sibling = k;
		else tr->nodes[node].child = k;
		node = k;
	}
	tr->nodes[node].id = tid;
	return 1;
}

static void load_added(ird *r, trie *tr) {
	u32 n = count(r, "added tokens count", 12), cap = 64;
	tr->only = -1;
	tr->n = 1;
	tr->nodes = alloc(r, cap * sizeof(tnode));
	if (!tr->nodes) return;
	tr->nodes[0] = (tnode){.child = 0, .sibling = 0, .id = -1, .b = 0};
	for (u32 e = 0; e < n && !r->err; e++) {
		i32 tid = id(r, "added token: id", 0);
		u32 len;
		const u8 *s = bytes(r, "added token: content", &len);
		if (r->err) return;
		if (!trie_add(r, tr, s, len, tid, &cap)) return;
	}
}

/* ---- the vocabulary by raw bytes (ignore_merges) ---- */


static void load_vocab(ird *r, tok *t) {
	u32 n = count(r, "vocabulary count", 12);
	if (r->err || n == 0) return;
	u32 at = r->off, total = 0;
	/* First pass: sizes; the second copies. */
	for (u32 e = 0; e < n && !r->err; e++) {
		id(r, "vocabulary entry: id", 0);
		u32 len;
		bytes(r, "vocabulary entry: bytes", &len);
		total += len;
	}
	if (r->err) return;
	u32 size = 16;
	while (size < 2 * n) size <<= 1;
	t->vslot = alloc(r, size * 4);
	t->ventry = alloc(r, n * 12);
	t->varena = alloc(r, total);
	if (r->oom) return;
	memset(t->vslot, 0, size * 4);
	t->vmask = size - 1;
	r->off = at;
	u32 off = 0;
	for (u32 e = 0; e < n; e++) {
		i32 tid = id(r, "", 0);
		u32 len;
		const u8 *s = bytes(r, "", &len);
		memcpy(t->varena + off, s, len);
		u32 h = bytes_hash(s, len) & t->vmask;
		for (;; h = (h + 1) & t->vmask) {
			u32 k = t->vslot[h];
			if (!k) break;
			const u32 *o = t->ventry + 3 * (k - 1);
			if (o[1] == len && bytes_eq(t->varena + o[0], s, len)) break;
		}
		if (t->vslot[h]) { /* a repeated key: the later id wins */
			t->ventry[3 * (t->vslot[h] - 1) + 2] = (u32)tid;
			continue;
		}
		t->ventry[3 * e] = off;
		t->ventry[3 * e + 1] = len;
		t->ventry[3 * e + 2] = (u32)tid;
		t->vslot[h] = e + 1;
		off += len;
	}
}

/* ---- character classes ---- */

static void load_classes(ird *r, tok *t) {
	if (r->n - r->off < TABLE_RUNES) {
		bad(r, "class table", r->off);
		return;
	}
	t->classes = alloc(r, TABLE_RUNES);
	if (!t->classes) return;
	memcpy(t->classes, r->b + r->off, TABLE_RUNES);
	r->off += TABLE_RUNES;
	u32 n = count(r, "class ranges count", 12);
	if (r->err) return;
	t->high = alloc(r, n * 12 + 4);
	if (!t->high) return;
	t->nhigh = n;
	u32 next = TABLE_RUNES;
	for (u32 e = 0; e < n && !r->err; e++) {
		u32 at = r->off, lo = rd32(r, "class range"), hi = rd32(r, "class range"), c = rd32(r, "class range");
		if (!r->err && (lo < next || hi < lo || hi > 0x10FFFFu || c == 0 || c > 0xFFu)) bad(r, "class range", at);
		t->high[3 * e] = lo;
		t->high[3 * e + 1] = hi;
		t->high[3 * e + 2] = c;
		next = hi + 1;
	}
}

/* ---- the whole image ---- */

void tok_free(tok *t) {
	if (!t) return;
	mem_free(t->pairs);
	mem_free(t->raw.nodes);
	mem_free(t->norm.nodes);
	mem_free(t->vslot);
	mem_free(t->ventry);
	mem_free(t->varena);
	mem_free(t->classes);
	mem_free(t->high);
	if (t->cache) {
		for (u32 i = 0; i < CACHE_SETS * CACHE_WAYS; i++) mem_free(t->cache[i].ext);
		mem_free(t->cache);
	}
	for (u32 i = 0; i < CEXT_CLASSES; i++) {
		for (cext *c = t->spare[i], *next; c; c = next) {
			next = *(cext **)c->ids;
			mem_free(c);
		}
	}
	mem_free(t);
}

tok *tok_load(const u8 *img, u32 n, const char **err, int *oom) {
	ird r = {img, 0, n, 0, 0};
	*err = 0;
	*oom = 0;
	tok *t = mem_alloc(sizeof(tok));
	if (!t) {
		*oom = 1;
		return 0;
	}
	memset(t, 0, sizeof *t);
	if (n < 4 || img[0] != 'E' || img[1] != 'S' || img[2] != 'T' || img[3] != 'I') bad(&r, "magic (want \"ESTI\")", 0);
	r.off = 4;
	if (rd32(&r, "version") != 1) bad(&r, "version (want 1)", 4);
	u32 at = r.off, flags = rd32(&r, "flags");
	if (!r.err && flags > 3) bad(&r, "flags", at);
	t->ignore_merges = flags & 1;
	t->fuse_unk = (flags >> 1) & 1;
	t->unk = id(&r, "unk id", 1);
	for (int b = 0; b < 256; b++) t->byte_id[b] = id(&r, "byte id", 1);
	if (!r.err) load_pairs(&r, t);
	if (!r.err && !r.oom) load_added(&r, &t->raw);
	if (!r.err && !r.oom) load_added(&r, &t->norm);
	if (!r.err && !r.oom) load_vocab(&r, t);
	if (!r.err && !r.oom) load_classes(&r, t);
	if (!r.err && !r.oom && r.off != n) bad(&r, "trailing bytes", r.off);
	if (!r.err && !r.oom) {
		t->cache = mem_alloc(CACHE_SETS * CACHE_WAYS * sizeof(cslot));
		if (!t->cache) r.oom = 1;
		else memset(t->cache, 0, CACHE_SETS * CACHE_WAYS * sizeof(cslot));
	}
	if (r.err || r.oom) {
		tok_free(t);
		*err = r.err;
		*oom = r.oom;
		return 0;
	}
	return t;
}
