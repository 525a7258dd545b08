/*
 * msgpack.c: the msgpack the C plugins read and write.
 *
 * Requests are accepted and rejected exactly as the Go edge does, which
 * decodes them with protocol.Unmarshal: first protocol's well-formedness
 * check (mp_well_formed, a port of checkWellFormed: one value, no trailing
 * bytes, depth at most 16, no length beyond the bytes left), then
 * vmihailenco/msgpack/v5's decoding rules, which the readers below follow
 * code by code: any integer width where an integer goes (nil reading as 0,
 * values truncated to the field's width), float32, float64 or any integer
 * for a float64 field but not float64 for a float32 one, nil/false/true for
 * a bool, str or bin for bytes and keys, nil for an empty array or map.
 */
#include "plugin.h"

/* ---- well-formedness (protocol/msgpack.go, skipValue) ---- */

#define MAX_DEPTH 16

/* wf_skip returns the offset just past the value at off, or -1. */
static i64 wf_skip(const u8 *b, u64 n, u64 off, int depth) {
	if (depth > MAX_DEPTH || off >= n) return -1;
	u32 c = b[off++];
	u64 len = 0, items = 0;
	int w = 0;
	if (c <= 0x7f || c >= 0xe0) return (i64)off;
	if (c >= 0x80 && c <= 0x8f) { items = 2 * (u64)(c & 0x0f); goto skip_items; }
	if (c >= 0x90 && c <= 0x9f) { items = c & 0x0f; goto skip_items; }
	if (c >= 0xa0 && c <= 0xbf) { len = c & 0x1f; goto skip_blob; }
	switch (c) {
	case 0xc0: case 0xc2: case 0xc3: return (i64)off;
	case 0xc4: case 0xd9: w = 1; goto read_len;
	case 0xc5: case 0xda: w = 2; goto read_len;
	case 0xc6: case 0xdb: w = 4; goto read_len;
	case 0xc7: case 0xc8: case 0xc9: /* ext: length, type, data */
		w = 1 << (c - 0xc7);
		if (n - off < (u64)w) return -1;
		for (int i = 0; i < w; i++) len = len << 8 | b[off++];
		len += 1;
		goto skip_blob;
	case 0xca: case 0xce: case 0xd2: len = 4; goto skip_blob;
	case 0xcb: case 0xcf: case 0xd3: len = 8; goto skip_blob;
	case 0xcc: case 0xd0: len = 1; goto skip_blob;
	case 0xcd: case 0xd1: len = 2; goto skip_blob;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: len = 1 + (1u << (c - 0xd4)); goto skip_blob;
	case 0xdc: case 0xdd: case 0xde: case 0xdf: {
		int ww = (c == 0xdc || c == 0xde) ? 2 : 4;
		if (n - off < (u64)ww) return -1;
		for (int i = 0; i < ww; i++) items = items << 8 | b[off++];
		if (c >= 0xde) items *= 2;
		goto skip_items;
	}
	}
	return -1; /* 0xc1, reserved */
read_len:
	if (n - off < (u64)w) return -1;
	for (int i = 0; i < w; i++) len = len << 8 | b[off++];
skip_blob:
	if (len > n - off) return -1;
	return (i64)(off + len);
skip_items:
	if (items > n - off) return -1;
	for (u64 i = 0; i < items; i++) {
		i64 next = wf_skip(b, n, off, depth + 1);
		if (next < 0) return -1;
		off = (u64)next;
	}
	return (i64)off;
}

int mp_well_formed(const u8 *b, u32 n) {
	return wf_skip(b, n, 0, 0) == (i64)n;
}

/* ---- decoding (vmihailenco/msgpack/v5 rules) ---- */

int mp_code(rd *r) {
	if (r->err || r->p >= r->end) {
		r->err = 1;
		return 0xc1;
	}
	return *r->p++;
}

const u8 *mp_take(rd *r, u32 n) {
	if (r->err || (usize)(r->end - r->p) < n) {
		r->err = 1;
		return 0;
	}
	const u8 *s = r->p;
	r->p += n;
	return s;
}

static u64 be(rd *r, int n) {
	const u8 *s = mp_take(r, (u32)n);
	u64 v = 0;
	if (!s) return 0;
	for (int i = 0; i < n; i++) v = v << 8 | s[i];
	return v;
}

/* mp_int is Decoder.int: any integer code (and nil, as 0) as an int64. As
 * uint64 the bits are those of Decoder.uint. */
i64 mp_int(rd *r, int c) {
	if (c == 0xc0) return 0;
	if (c <= 0x7f || c >= 0xe0) return (i64)(signed char)c;
	switch (c) {
	case 0xcc: return (i64)be(r, 1);
	case 0xd0: return (i64)(signed char)be(r, 1);
	case 0xcd: return (i64)be(r, 2);
	case 0xd1: return (i64)(short)be(r, 2);
	case 0xce: return (i64)be(r, 4);
	case 0xd2: return (i64)(i32)be(r, 4);
	case 0xcf: case 0xd3: return (i64)be(r, 8);
	}
	r->err = 1;
	return 0;
}

/* mp_f64 is Decoder.float64: float32, float64, or an integer (nil included)
 * converted from int64. */
double mp_f64(rd *r, int c) {
	union { u32 u; float f; } f;
	union { u64 u; double d; } d;
	if (c == 0xca) {
		f.u = (u32)be(r, 4);
		return (double)f.f;
	}
	if (c == 0xcb) {
		d.u = be(r, 8);
		return d.d;
	}
	return (double)mp_int(r, c);
}

/* mp_f32 is Decoder.float32: float32 or an integer; float64 is an error. */
float mp_f32(rd *r, int c) {
	union { u32 u; float f; } f;
	if (c == 0xca) {
		f.u = (u32)be(r, 4);
		return f.f;
	}
	return (float)mp_int(r, c);
}

int mp_bool(rd *r, int c) {
	if (c == 0xc0 || c == 0xc2) return 0;
	if (c == 0xc3) return 1;
	r->err = 1;
	return 0;
}

/* mp_bytes_len is Decoder.bytesLen: str or bin, -1 for nil. */
i64 mp_bytes_len(rd *r, int c) {
	if (c == 0xc0) return -1;
	if (c >= 0xa0 && c <= 0xbf) return c & 0x1f;
	switch (c) {
	case 0xd9: case 0xc4: return (i64)be(r, 1);
	case 0xda: case 0xc5: return (i64)be(r, 2);
	case 0xdb: case 0xc6: return (i64)be(r, 4);
	}
	r->err = 1;
	return 0;
}

i64 mp_array_len(rd *r, int c) {
	if (c == 0xc0) return -1;
	if (c >= 0x90 && c <= 0x9f) return c & 0x0f;
	if (c == 0xdc) return (i64)be(r, 2);
	if (c == 0xdd) return (i64)be(r, 4);
	r->err = 1;
	return 0;
}

i64 mp_map_len(rd *r, int c) {
	if (c == 0xc0) return -1;
	if (c >= 0x80 && c <= 0x8f) return c & 0x0f;
	if (c == 0xde) return (i64)be(r, 2);
	if (c == 0xdf) return (i64)be(r, 4);
	r->err = 1;
	return 0;
}

/* mp_typed_map_len is Decoder.DecodeMapLen, used for map fields: an ext
 * header before the map is skipped (its type byte, then for ext8/16/32 as
 * many bytes as its length field has). */
i64 mp_typed_map_len(rd *r) {
	int c = mp_code(r);
	if ((c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9)) {
		int skip = 1 + (c == 0xc7 ? 1 : c == 0xc8 ? 2 : c == 0xc9 ? 4 : 0);
		mp_take(r, (u32)skip);
		c = mp_code(r);
	}
	return mp_map_len(r, c);
}

/* ---- encoding ---- */

static int w_reserve(wr *w, u32 more) {
	if (w->oom) return 0;
	if (w->cap - w->n >= more) return 1;
	u32 cap = w->cap ? w->cap : 256;
	while (cap - w->n < more) cap *= 2;
	u8 *b = mem_alloc(cap);
	if (!b) {
		w->oom = 1;
		return 0;
	}
	if (w->b) {
		memcpy(b, w->b, w->n);
		mem_free(w->b);
	}
	w->b = b;
	w->cap = cap;
	return 1;
}

void w_byte(wr *w, u8 c) {
	if (w_reserve(w, 1)) w->b[w->n++] = c;
}

void w_raw(wr *w, const void *s, u32 n) {
	if (!w_reserve(w, n)) return;
	memcpy(w->b + w->n, s, n);
	w->n += n;
}

void w_be(wr *w, u64 v, int bytes) {
	if (!w_reserve(w, (u32)bytes)) return;
	for (int i = bytes - 1; i >= 0; i--) w->b[w->n++] = (u8)(v >> (8 * i));
}

/* w_str writes a str the way the Go encoder does: fixstr, str8, str16,
 * str32 by length. */
void w_str(wr *w, const char *s, u32 n) {
	if (n < 32) w_byte(w, (u8)(0xa0 | n));
	else if (n < 256) { w_byte(w, 0xd9); w_be(w, n, 1); }
	else if (n <= 0xffff) { w_byte(w, 0xda); w_be(w, n, 2); }
	else { w_byte(w, 0xdb); w_be(w, n, 4); }
	w_raw(w, s, n);
}

void w_cstr(wr *w, const char *s) {
	u32 n = 0;
	while (s[n]) n++;
	w_str(w, s, n);
}

void w_map(wr *w, u32 n) {
	if (n < 16) w_byte(w, (u8)(0x80 | n));
	else if (n <= 0xffff) { w_byte(w, 0xde); w_be(w, n, 2); }
	else { w_byte(w, 0xdf); w_be(w, n, 4); }
}

void w_array(wr *w, u32 n) {
	if (n < 16) w_byte(w, (u8)(0x90 | n));
	else if (n <= 0xffff) { w_byte(w, 0xdc); w_be(w, n, 2); }
	else { w_byte(w, 0xdd); w_be(w, n, 4); }
}
