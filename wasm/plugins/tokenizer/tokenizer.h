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

/* The word cache: CACHE_SETS sets of CACHE_WAYS slots, most recently used
 * first. A slot holds a piece's first 16 bytes as two zero-padded words
 * (w0, w1) and its length, so a lookup reads only the set (three cache
 * lines) to decide; pieces of up to 16 bytes with up to SLOT_IDS ids (nearly
 * all) keep their ids in the slot too. Longer pieces and pieces with more
 * ids have an extension: their whole key and their ids. */
#define SLOT_IDS 6u

typedef struct {
	u32 len, n;
	i32 ids[]; /* n ids, then the len key bytes */
} cext;

typedef struct {
	u64 w0, w1;
	u16 len, n; /* len 0: empty (no piece is empty) */
	cext *ext;  /* or 0 */
	i32 ids[SLOT_IDS];
} cslot;

/* Evicted extensions are kept for reuse by size class (16-byte steps up to
 * the largest): the allocator's first-fit free list would otherwise grow
 * with every eviction and slow every allocation. */
#define CEXT_CLASSES ((8u + 4u * CACHE_MAX_LEN + CACHE_MAX_LEN + 15u) / 16u + 1u)

#define CACHE_WAYS 4u
#define CACHE_SETS 8192u /* 32k slots, as wasm/tokenizer's cache */

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
	cslot *cache;                /* CACHE_SETS * CACHE_WAYS */
	cext *spare[CEXT_CLASSES];   /* evicted extensions by size class, linked through ids[0] */
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
