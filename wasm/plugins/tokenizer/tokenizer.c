/*
 * tokenizer: the EdgeSeek tokenizer's encoder as a WebAssembly module
 * written in C.
 *
 * It exports edge_tokenizer_attach, edge_tokenize and edge_release, plus
 * the mandatory edge_abi_version, edge_alloc and edge_free (wasm/ABI.md).
 * It has no JSON parser and opens no sessions of its own: the host chains
 * it in front of the Go edge (edgehost.Chain), and when the Go edge opens a
 * session the host asks it for the session's tokenizer image
 * (edge_tokenizer_image, wasm/tokenizer/IMAGE.md) and attaches the image
 * here under the session's handle. From then on edge_tokenize requests for
 * that handle come here, and everything else (detokenizing, chat encoding,
 * Engram addressing, sampling) stays with the Go edge.
 *
 * It answers exactly as the Go edge does: the same ids, reply bytes and
 * error codes for every request (tested side by side on the tokenizer
 * corpus, random text and fuzzed requests in host/edgehost). It exists
 * because Go compiled to WebAssembly runs the tokenizer's branchy loops
 * several times slower than natively (wasm/tokenizer/DESIGN.md), and C
 * compiled by clang does not.
 *
 * Files: tokenizer.c (this: exports, sessions, requests and replies),
 * image.c (loading an image), encode.c (added tokens, pre-tokenizer, BPE,
 * word cache), tokenizer.h; ../internal has what it shares with the C
 * sampler (allocator, msgpack, call plumbing). DESIGN.md has the design
 * and the measurements.
 */
#include "tokenizer.h"

static u64 fail(const char *msg) { return fail_code("invalid", msg); }

static u64 oom(void) { return fail_code("internal", "tokenizer: out of memory"); }

/* ---- attached sessions: the Go edge's handles, few per instance ---- */

typedef struct {
	u32 handle;
	tok *t;
} session;

static session *sessions;
static u32 nsessions, cap_sessions;

static session *find(u32 h) {
	for (u32 i = 0; i < nsessions; i++)
		if (sessions[i].handle == h) return &sessions[i];
	return 0;
}

/* ---- requests ---- */

typedef struct {
	u32 handle;
	const u8 *bytes; /* text or image */
	i64 n;
} req;

static void req_zero(void *o) { memset(o, 0, sizeof(req)); }

static void f_handle(rd *r, void *o) { ((req *)o)->handle = (u32)mp_int(r, mp_code(r)); }

static void f_bytes(rd *r, void *o) {
	req *q = o;
	q->n = mp_bytes_len(r, mp_code(r));
	q->bytes = q->n > 0 ? mp_take(r, (u32)q->n) : 0;
	if (q->n < 0) q->n = 0;
}

static const field text_fields[] = {{"handle", f_handle}, {"text", f_bytes}};
static const field attach_fields[] = {{"handle", f_handle}, {"image", f_bytes}};
static const field handle_fields[] = {{"handle", f_handle}};

/* decode reads a request struct; it returns an error message or 0. */
static const char *decode(u32 ptr, u32 len, const field *fs, int nf, req *q, const char *what) {
	const u8 *b = (const u8 *)(usize)ptr;
	if (!valid_buffer(ptr, len)) return "tokenizer: request outside memory";
	if (len > MAX_FRAME) return "tokenizer: request: oversize";
	if (!mp_well_formed(b, len)) return "tokenizer: malformed msgpack";
	rd r = {b, b + len, 0};
	req_zero(q);
	decode_struct(&r, fs, nf, q, req_zero);
	if (r.err) return what;
	return 0;
}

static u64 empty_reply(void) {
	wr w = {0};
	w_byte(&w, 0);
	w_map(&w, 0);
	return respond(&w);
}

/* edge_tokenizer_attach: TokenizerAttach {handle, image} → Empty. A handle
 * attached again gets the new image. */
EXPORT("edge_tokenizer_attach") u64 edge_tokenizer_attach(u32 ptr, u32 len) {
	req q;
	const char *err = decode(ptr, len, attach_fields, 2, &q,
				 "tokenizer_attach: malformed TokenizerAttach (wrong type, unknown field or truncated)");
	if (err) return fail(err);
	if (q.n == 0) return fail("tokenizer_attach: image is empty");
	if (q.handle == 0) return fail("tokenizer_attach: handle is 0");
	int out_of_memory;
	tok *t = tok_load(q.bytes, (u32)q.n, &err, &out_of_memory);
	if (out_of_memory) return oom();
	if (!t) return fail(err);
	session *s = find(q.handle);
	if (s) {
		tok_free(s->t);
		s->t = t;
		return empty_reply();
	}
	if (nsessions == MAX_HANDLES) {
		tok_free(t);
		return fail("tokenizer_attach: too many live sessions");
	}
	if (nsessions == cap_sessions) {
		u32 cap = cap_sessions ? 2 * cap_sessions : 4;
		session *ns = mem_alloc(cap * sizeof(session));
		if (!ns) {
			tok_free(t);
			return oom();
		}
		memcpy(ns, sessions, nsessions * sizeof(session));
		mem_free(sessions);
		sessions = ns;
		cap_sessions = cap;
	}
	sessions[nsessions++] = (session){q.handle, t};
	return empty_reply();
}

static ids out; /* kept across calls: its capacity is reused */

/* ids_reply writes protocol's IDsReply bytes (protocol/ids.go): {"ids":
 * [...]}, each id in its smallest unsigned encoding. */
static u64 ids_reply(const ids *v) {
	u32 size = 1 + 5 + 5 + 5 * v->n;
	u8 *b = mem_alloc(size);
	if (!b) return oom();
	u32 k = 0;
	b[k++] = 0;
	b[k++] = 0x81, b[k++] = 0xa3, b[k++] = 'i', b[k++] = 'd', b[k++] = 's';
	u32 n = v->n;
	if (n < 16) b[k++] = (u8)(0x90 | n);
	else if (n < 65536) b[k++] = 0xdc, b[k++] = (u8)(n >> 8), b[k++] = (u8)n;
	else b[k++] = 0xdd, b[k++] = (u8)(n >> 24), b[k++] = (u8)(n >> 16), b[k++] = (u8)(n >> 8), b[k++] = (u8)n;
	for (u32 i = 0; i < n; i++) {
		u32 x = (u32)v->v[i];
		if (x < 0x80) b[k++] = (u8)x;
		else if (x < 0x100) b[k++] = 0xcc, b[k++] = (u8)x;
		else if (x < 0x10000) b[k++] = 0xcd, b[k++] = (u8)(x >> 8), b[k++] = (u8)x;
		else b[k++] = 0xd2, b[k++] = (u8)(x >> 24), b[k++] = (u8)(x >> 16), b[k++] = (u8)(x >> 8), b[k++] = (u8)x;
	}
	wr w = {b, k, size, 0};
	return respond(&w);
}

/* edge_tokenize: TextRequest {handle, text} → IDsReply {ids}. */
EXPORT("edge_tokenize") u64 edge_tokenize(u32 ptr, u32 len) {
	req q;
	const char *err = decode(ptr, len, text_fields, 2, &q,
				 "tokenize: malformed TextRequest (wrong type, unknown field or truncated)");
	if (err) return fail(err);
	if (q.handle == 0) return fail("tokenize: text_request.handle is 0");
	session *s = find(q.handle);
	if (!s) return fail("tokenize: handle is not a live session: bad handle");
	out.n = 0;
	out.oom = 0;
	if (tok_encode(s->t, q.bytes, (u32)q.n, &out) < 0) return fail("edge: tokenize: tokenizer: text is not valid UTF-8");
	if (out.oom) return oom();
	u64 r = ids_reply(&out);
	if (out.cap > (1u << 20)) { /* after a huge text, give its buffer back */
		mem_free(out.v);
		out.v = 0;
		out.cap = 0;
	}
	return r;
}

/* edge_release: HandleRequest {handle} → Empty: forgets an attached
 * session. */
EXPORT("edge_release") u64 edge_release(u32 ptr, u32 len) {
	req q;
	const char *err = decode(ptr, len, handle_fields, 1, &q,
				 "release: malformed HandleRequest (wrong type, unknown field or truncated)");
	if (err) return fail(err);
	if (q.handle == 0) return fail("release: handle_request.handle is 0");
	session *s = find(q.handle);
	if (!s) return fail("release: handle is not live: bad handle");
	tok_free(s->t);
	*s = sessions[--nsessions];
	return empty_reply();
}
