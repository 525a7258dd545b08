/*
 * plugin.h: what EdgeSeek's own C plugins share (wasm/plugins/sampler,
 * wasm/plugins/tokenizer): integer types, the allocator (mem.c), msgpack
 * as protocol.Unmarshal reads it and protocol.Marshal writes it
 * (msgpack.c), and the plumbing of one ABI call (abi.c: the mandatory
 * exports, replies, errors, struct decoding). See wasm/ABI.md.
 */
#ifndef EDGESEEK_PLUGIN_H
#define EDGESEEK_PLUGIN_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned long usize; /* size_t on wasm32 */

#define EXPORT(name) __attribute__((export_name(name)))

/* protocol limits (protocol/protocol.go, wasm/edge) */
#define MAX_FRAME (64u << 20)
#define MAX_HANDLES 65536

/* ---- mem.c ---- */

void *mem_alloc(u32 size);
int mem_reserve(u32 size);
void mem_free(void *p);
void *memcpy(void *dst, const void *src, usize n);
void *memmove(void *dst, const void *src, usize n);
void *memset(void *dst, int c, usize n);

/* ---- msgpack.c ---- */

/* rd reads msgpack from [p, end); err is set by the first failure and
 * every later read then returns zeros. */
typedef struct {
	const u8 *p, *end;
	int err;
} rd;

int mp_well_formed(const u8 *b, u32 n);
int mp_code(rd *r);
i64 mp_int(rd *r, int c);
double mp_f64(rd *r, int c);
float mp_f32(rd *r, int c);
int mp_bool(rd *r, int c);
i64 mp_bytes_len(rd *r, int c);
i64 mp_array_len(rd *r, int c);
i64 mp_map_len(rd *r, int c);
i64 mp_typed_map_len(rd *r);
const u8 *mp_take(rd *r, u32 n);

/* wr builds a response in a buffer that grows on demand. */
typedef struct {
	u8 *b;
	u32 n, cap;
	int oom;
} wr;

void w_byte(wr *w, u8 c);
void w_raw(wr *w, const void *s, u32 n);
void w_be(wr *w, u64 v, int bytes);
void w_str(wr *w, const char *s, u32 n);
void w_cstr(wr *w, const char *s);
void w_map(wr *w, u32 n);
void w_array(wr *w, u32 n);

/* ---- abi.c ---- */

/* respond returns the ABI result of a finished response buffer:
 * address << 32 | length, or 0 (a failed instance) if it could not be
 * allocated. */
u64 respond(wr *w);
/* fail_code answers Error{code, message}. */
u64 fail_code(const char *code, const char *msg);
/* valid_buffer reports whether [ptr, ptr+len) lies in linear memory. */
int valid_buffer(u32 ptr, u32 len);

/* Request structs are decoded as vmihailenco/msgpack/v5 decodes them: a
 * map of field names (str or bin keys; an unknown name is an error, as
 * protocol.Unmarshal disallows unknown fields; a repeated name decodes
 * again into the same field), nil or an empty array for the zero value, or
 * an array of exactly every field in order. */
typedef void (*field_fn)(rd *r, void *obj);

typedef struct {
	const char *name;
	field_fn fn;
} field;

void decode_struct(rd *r, const field *fs, int nf, void *obj, void (*zero)(void *));

#endif
