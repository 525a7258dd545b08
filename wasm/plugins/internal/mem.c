/*
 * mem.c: the module's allocator, and the few libc functions clang may call.
 *
 * One boundary-tag allocator serves everything: request and response
 * buffers (edge_alloc/edge_free, up to 64 MiB, one or two live at a time),
 * the sampler's samplers, logit bias and stop lists, the tokenizer's tables
 * and word cache entries (any number, any lifetime) and instance-wide
 * scratch buffers. A bump allocator that resets when nothing is live would
 * never reset here: those objects outlive the calls around them.
 *
 * Each block starts with an 8-byte header: the size of the block before it
 * (0 for the first) and its own size, a multiple of 8 with bit 0 set while
 * in use. Free blocks keep a doubly linked list in their first payload
 * words; freeing merges a block with free neighbours, so the request buffer
 * freed after every call is reused by the next one of the same size.
 * Memory grows (memory.grow) when no free block fits; when growing fails
 * the allocation returns NULL, never traps.
 */
#include "plugin.h"

extern u8 __heap_base;

#define HDR 8u
#define USED 1u
#define MIN_BLOCK 16u
#define PAGE 65536u
/* Memory never grows past the last page below 4 GiB, so addresses and
 * sizes fit in u32. */
#define MAX_PAGES 65535u
/* Grow at least this much at a time (16 pages = 1 MiB). */
#define GROW_MIN_PAGES 16u

typedef struct {
	u32 prev; /* size of the previous block, 0 for the first */
	u32 size; /* this block's size | USED */
} hdr;

typedef struct {
	hdr h;
	u32 next, prevfree; /* free list links (block addresses), free blocks only */
} fblock;

static u32 heap_lo, heap_hi; /* managed range [heap_lo, heap_hi) */
static u32 last_block;       /* the block ending at heap_hi, 0 when none */
static u32 free_head;

static inline fblock *B(u32 a) { return (fblock *)(usize)a; }
static inline u32 bsize(u32 a) { return B(a)->h.size & ~USED; }

static void unlink_free(u32 a) {
	fblock *b = B(a);
	if (b->prevfree) B(b->prevfree)->next = b->next;
	else free_head = b->next;
	if (b->next) B(b->next)->prevfree = b->prevfree;
}

static void push_free(u32 a) {
	fblock *b = B(a);
	b->h.size &= ~USED;
	b->prevfree = 0;
	b->next = free_head;
	if (free_head) B(free_head)->prevfree = a;
	free_head = a;
}

/* set_prev records a's size in the header of the block after a, if any. */
static void set_prev(u32 a) {
	u32 sz = bsize(a);
	if (a + sz < heap_hi) B(a + sz)->h.prev = sz;
}

static void heap_init(void) {
	heap_lo = ((u32)(usize)&__heap_base + 7u) & ~7u;
	u64 hi = (u64)__builtin_wasm_memory_size(0) * PAGE;
	if (hi > (u64)MAX_PAGES * PAGE) hi = (u64)MAX_PAGES * PAGE;
	heap_hi = heap_lo;
	if (hi >= (u64)heap_lo + MIN_BLOCK) {
		heap_hi = (u32)hi & ~7u;
		fblock *b = B(heap_lo);
		b->h.prev = 0;
		b->h.size = heap_hi - heap_lo;
		last_block = heap_lo;
		push_free(heap_lo);
	}
}

/* grow adds at least need bytes of free space at the end of the heap. */
static int grow(u32 need) {
	u32 have = (last_block && !(B(last_block)->h.size & USED)) ? bsize(last_block) : 0;
	u64 want = need > have ? need - have : 0;
	u64 pages = (want + PAGE - 1) / PAGE;
	u64 cur = __builtin_wasm_memory_size(0);
	if (pages == 0) pages = 1;
	if (cur + pages > MAX_PAGES) return 0;
	u64 ask = pages < GROW_MIN_PAGES ? GROW_MIN_PAGES : pages;
	if (cur + ask > MAX_PAGES || __builtin_wasm_memory_grow(0, (usize)ask) == (usize)-1) {
		ask = pages;
		if (__builtin_wasm_memory_grow(0, (usize)ask) == (usize)-1) return 0;
	}
	/* The memory may have been bigger than heap_hi (a partial last page
	 * before heap_init, or pages added by someone else): take it all. */
	u64 top = (cur + ask) * PAGE;
	u32 old = heap_hi, add = (u32)(top - old) & ~7u;
	if (add < MIN_BLOCK) return 0;
	heap_hi = old + add;
	if (last_block && !(B(last_block)->h.size & USED)) {
		B(last_block)->h.size += add;
	} else {
		fblock *b = B(old);
		b->h.prev = last_block ? bsize(last_block) : 0;
		b->h.size = add;
		last_block = old;
		push_free(old);
	}
	return 1;
}

/* mem_reserve makes sure that allocations totalling size bytes will not
 * need another memory.grow: wazero copies the whole memory when it grows
 * past its capacity, so one large step costs less than many small ones. */
int mem_reserve(u32 size) {
	if (heap_lo == 0) heap_init();
	if (size > 0x7fff0000u) return 0;
	u32 have = (last_block && !(B(last_block)->h.size & USED)) ? bsize(last_block) : 0;
	return have >= size || grow(size);
}

void *mem_alloc(u32 size) {
	if (heap_lo == 0) heap_init();
	if (size > 0x7fff0000u) return 0;
	u32 need = (size + HDR + 7u) & ~7u;
	if (need < MIN_BLOCK) need = MIN_BLOCK;
	for (int tries = 0; tries < 2; tries++) {
		for (u32 a = free_head; a; a = B(a)->next) {
			u32 sz = bsize(a);
			if (sz < need) continue;
			unlink_free(a);
			if (sz - need >= MIN_BLOCK) {
				u32 rest = a + need;
				B(rest)->h.prev = need;
				B(rest)->h.size = sz - need;
				set_prev(rest);
				if (last_block == a) last_block = rest;
				push_free(rest);
				sz = need;
			}
			B(a)->h.size = sz | USED;
			return (void *)(usize)(a + HDR);
		}
		if (!grow(need)) return 0;
	}
	return 0;
}

void mem_free(void *p) {
	u32 a = (u32)(usize)p - HDR;
	/* Ignore what cannot be a live block rather than corrupt the heap. */
	if (p == 0 || ((u32)(usize)p & 7u) || a < heap_lo || a >= heap_hi) return;
	u32 sz = B(a)->h.size;
	if (!(sz & USED)) return;
	sz &= ~USED;
	if (sz < MIN_BLOCK || sz > heap_hi - a) return;
	if (a + sz < heap_hi && B(a + sz)->h.prev != sz) return;
	B(a)->h.size = sz;
	u32 next = a + sz;
	if (next < heap_hi && !(B(next)->h.size & USED)) {
		unlink_free(next);
		if (last_block == next) last_block = a;
		sz += bsize(next);
		B(a)->h.size = sz;
	}
	u32 prev = B(a)->h.prev;
	if (prev && !(B(a - prev)->h.size & USED)) {
		u32 pa = a - prev;
		unlink_free(pa);
		if (last_block == a) last_block = pa;
		B(pa)->h.size = prev + sz;
		a = pa;
	}
	set_prev(a);
	push_free(a);
}

/* clang lowers struct copies and the like to these; -fno-builtin keeps
 * their own loops from being turned back into calls to themselves. */

void *memcpy(void *dst, const void *src, usize n) {
	u8 *d = dst;
	const u8 *s = src;
	if ((((usize)d | (usize)s) & 7u) == 0) {
		for (; n >= 8; n -= 8, d += 8, s += 8) *(u64 *)d = *(const u64 *)s;
	}
	for (; n; n--) *d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, usize n) {
	u8 *d = dst;
	const u8 *s = src;
	if (d <= s || d >= s + n) return memcpy(dst, src, n);
	while (n) {
		n--;
		d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, usize n) {
	u8 *d = dst;
	if (((usize)d & 7u) == 0) {
		u64 v = (u8)c * 0x0101010101010101ull;
		for (; n >= 8; n -= 8, d += 8) *(u64 *)d = v;
	}
	for (; n; n--) *d++ = (u8)c;
	return dst;
}
