/*
 * tokenizer.h: declarations shared by the files of the EdgeSeek tokenizer
 * module (see tokenizer.c for what the module is, DESIGN.md for how it
 * stays identical to wasm/tokenizer, wasm/tokenizer/IMAGE.md for what it
 * loads).
 */
#ifndef EDGESEEK_TOKENIZER_H
#define EDGESEEK_TOKENIZER_H

#include "../internal/plugin.h"

/* Character class bits, as wasm/tokenizer's pretok.go defines them. */
#define C_L 0x01u    /* \p{L} */
#define C_M 0x02u    /* \p{M} */
#define C_N 0x04u    /* \p{N} */
#define C_P 0x08u    /* \p{P} */
#define C_S 0x10u    /* \p{S} */
#define C_SPACE 0x20u /* \s: Unicode White_Space */
#define C_CRLF 0x40u /* \r or \n */
#define C_CJK 0x80u  /* [一-龥぀-ゟ゠-ヿ] */

#define TABLE_RUNES 0x20000u /* code points the class table covers */
#define MAX_IDS (1u << 22)   /* wasm/tokenizer's maxIDs: ids are below it */
#define NO_RANK 0x7fffffffu  /* a pair without a merge */
#define CACHE_MAX_LEN 255u   /* longest piece the word cache keeps (HF's limit) */

/* An added-token trie: children as sibling lists (the few hundred added
 * tokens are searched only where a token's first byte occurs). */
typedef struct {
	u32 child;   /* first child's node index, 0 for none */
	u32 sibling; /* next sibling's node index, 0 for none */
	i32 id;      /* token ending here, or -1 */
	u8 b;        /* the byte on the edge into this node */
} tnode;

typedef struct {
	tnode *nodes; /* nodes[0] is the root */
	u32 n;
	u8 first[256]; /* can a token start with this byte? */
	i32 only;      /* the byte every token starts with, -1 if none or several */
} trie;

/* A word cache entry: a piece and its ids. w0, w1 are the piece's first
 * 16 bytes, zero-padded (key_words); the whole piece follows the ids, which
 * are padded to at least four (the encoder copies four at once). */
typedef struct {
	u64 w0, w1;
	u32 len, n;
	i32 ids[];
} centry;

/* Evicted entries are kept for reuse by size class (16-byte steps up to
 * the largest entry): the allocator's first-fit free list would otherwise
 * grow with every eviction and slow every allocation. */
#define CENTRY_CLASSES ((24u + 4u * CACHE_MAX_LEN + CACHE_MAX_LEN + 15u) / 16u + 1u)

#define CACHE_WAYS 4u
#define CACHE_SETS 8192u /* 32k entries, as wasm/tokenizer's cache */

/* A tokenizer loaded from an image (image.c). */
typedef struct {
	int ignore_merges, fuse_unk;
	i32 unk; /* -1: none */
	i32 byte_id[256];
	u64 *pairs; /* 2 per slot: a<<32|b (PAIR_EMPTY when free), rank<<32|id */
	u32 pair_mask;
	trie raw, norm; /* added tokens with normalized=false / true */
	/* ignore_merges: the vocabulary by raw bytes (open addressing on
	 * entry indexes + 1). */
	u32 *vslot, vmask;
	u32 *ventry; /* 3 per entry: arena offset, length, id */
	u8 *varena;
	u8 *classes; /* TABLE_RUNES class bytes */
	u32 *high;   /* 3 per range above the table: lo, hi, class */
	u32 nhigh;
	centry **cache; /* CACHE_SETS * CACHE_WAYS, most recently used first */
	centry *spare[CENTRY_CLASSES]; /* evicted entries by size class, linked through ids[0] */
} tok;

#define PAIR_EMPTY (~0ull)

/* ---- image.c ---- */

/* tok_load builds a tokenizer from an image. It returns NULL and sets
 * *err (a message naming what and where) or *oom. */
tok *tok_load(const u8 *img, u32 n, const char **err, int *oom);
void tok_free(tok *t);

/* ---- encode.c ---- */

u32 bytes_hash(const u8 *s, u32 n);
int bytes_eq(const u8 *a, const u8 *b, u32 n);

/* ids is a growable list of token ids. */
typedef struct {
	i32 *v;
	u32 n, cap;
	int oom;
} ids;

/* tok_encode appends the ids of text to out, as wasm/tokenizer's Encode.
 * It returns 0, or -1 when text is not valid UTF-8; out->oom reports
 * running out of memory. */
int tok_encode(tok *t, const u8 *text, u32 n, ids *out);

#endif
