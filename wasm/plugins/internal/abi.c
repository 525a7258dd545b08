/*
 * abi.c: the parts of one ABI call every EdgeSeek C plugin shares: the
 * mandatory exports, responses and errors, request struct decoding.
 */
#include "plugin.h"

EXPORT("edge_abi_version") u32 edge_abi_version(void) { return 1; }

EXPORT("edge_alloc") u32 edge_alloc(u32 size) { return (u32)(usize)mem_alloc(size); }

EXPORT("edge_free") void edge_free(u32 ptr) { mem_free((void *)(usize)ptr); }

u64 respond(wr *w) {
	if (w->oom || !w->b) {
		mem_free(w->b);
		return 0; /* the host treats a missing response as a failed instance */
	}
	return (u64)(u32)(usize)w->b << 32 | w->n;
}

u64 fail_code(const char *code, const char *msg) {
	wr w = {0};
	w_byte(&w, 1);
	w_map(&w, 2);
	w_cstr(&w, "code");
	w_cstr(&w, code);
	w_cstr(&w, "message");
	w_cstr(&w, msg);
	return respond(&w);
}

int valid_buffer(u32 ptr, u32 len) {
	u64 size = (u64)__builtin_wasm_memory_size(0) * 65536;
	return (ptr != 0 || len == 0) && (u64)ptr + len <= size;
}

static int name_is(const u8 *k, i64 n, const char *s) {
	i64 i = 0;
	for (; i < n; i++)
		if (s[i] == 0 || (u8)s[i] != k[i]) return 0;
	return s[i] == 0;
}

void decode_struct(rd *r, const field *fs, int nf, void *obj, void (*zero)(void *)) {
	int c = mp_code(r);
	if (r->err) return;
	if (c == 0xc0 || (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		i64 n = mp_map_len(r, c);
		if (n == -1) zero(obj);
		for (i64 i = 0; i < n && !r->err; i++) {
			i64 kl = mp_bytes_len(r, mp_code(r));
			const u8 *k = kl > 0 ? mp_take(r, (u32)kl) : 0;
			if (r->err) return;
			const field *f = 0;
			for (int j = 0; j < nf && kl >= 0; j++)
				if (name_is(k, kl, fs[j].name)) f = &fs[j];
			if (!f) {
				r->err = 1;
				return;
			}
			f->fn(r, obj);
		}
		return;
	}
	i64 n = mp_array_len(r, c);
	if (r->err) return;
	if (n <= 0) {
		zero(obj);
		return;
	}
	if (n != nf) {
		r->err = 1;
		return;
	}
	for (int j = 0; j < nf && !r->err; j++) fs[j].fn(r, obj);
}
