// Package tokenizer is a pure-Go byte-level BPE tokenizer that reproduces Hugging Face
// tokenizers for DeepSeek's tokenizer.json (V3 and V4 share the BPE): encode ids and decode
// strings are identical to HF's encode(text, add_special_tokens=False) and decode. It has no
// regexp and no I/O, so it runs natively and compiled to WebAssembly. See DESIGN.md.
package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Tokenizer is a loaded tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab        *vocabIndex // model vocabulary; keys are substrings of vocabKeys
	vocabKeys    string
	modelSize    int            // entries in the model vocabulary
	idTok        []string       // id -> token (added tokens override the model's)
	used         []bool         // id is assigned (a vocabulary may have gaps)
	added        map[string]int // added token content -> id
	maxAdded     int
	special      map[string]bool // contents of added tokens flagged special
	rawTrie      *addedTrie      // added tokens with normalized=false
	normTrie     *addedTrie      // added tokens with normalized=true
	pairs        *pairTable
	byteID       [256]int32 // model id of the byte-level character of each byte, -1 if absent
	unkID        int32
	fuseUnk      bool
	ignoreMerges bool
	cache        wordCache

	// Decoding tables, indexed by id: the bytes a token decodes to are dec[decOff[id]:decOff[id+1]].
	dec    []byte
	decOff []uint32
	skip   []bool // token text is a special added token (dropped by skipSpecial)

	bos, eos int
}

// byteToRune is GPT-2's reversible byte-to-character map used by ByteLevel: printable bytes keep
// their code point, the others are moved to U+0100 and up so every byte is a visible character.
// runeToByte inverts it for runes below 0x144 (the largest mapped one is U+0143); -1 = unmapped.
var byteToRune, runeToByte = func() (b2r [256]rune, r2b [0x144]int16) {
	for i := range r2b {
		r2b[i] = -1
	}
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = 256 + n
			n++
		}
		r2b[b2r[b]] = int16(b)
	}
	return b2r, r2b
}()

// byteLevel maps raw bytes to their ByteLevel string.
func byteLevel(s string) string {
	out := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = byteToRune[s[i]]
	}
	return string(out)
}

// appendTokenBytes appends what the ByteLevel decoder makes of one token: the bytes behind its
// characters, or, if any character is outside the byte map (as in "<｜User｜>"), the token's own
// UTF-8.
func appendTokenBytes(dst []byte, tok string) []byte {
	n := len(dst)
	for _, r := range tok {
		if r >= rune(len(runeToByte)) || runeToByte[r] < 0 {
			return append(dst[:n], tok...)
		}
		dst = append(dst, byte(runeToByte[r]))
	}
	return dst
}

// finish builds the derived tables once vocabulary and added tokens are known.
func (t *Tokenizer) finish() {
	for b := range 256 {
		t.byteID[b] = -1
		if id, ok := t.vocabID(string(byteToRune[b])); ok {
			t.byteID[b] = int32(id)
		}
	}
	n := len(t.idTok)
	t.decOff = make([]uint32, n+1)
	t.skip = make([]bool, n)
	for id, tok := range t.idTok {
		t.decOff[id] = uint32(len(t.dec))
		if t.used[id] {
			t.dec = appendTokenBytes(t.dec, tok)
		}
	}
	t.decOff[n] = uint32(len(t.dec))
	for s := range t.special {
		if id := t.added[s]; t.idTok[id] == s {
			t.skip[id] = true
		}
	}
	t.cache = newWordCache()
	t.bos = t.firstSpecial("<｜begin▁of▁sentence｜>", "<s>", "<|begin_of_text|>", "<|startoftext|>")
	t.eos = t.firstSpecial("<｜end▁of▁sentence｜>", "</s>", "<|end_of_text|>", "<|endoftext|>")
}

func (t *Tokenizer) firstSpecial(names ...string) int {
	for _, s := range names {
		if id, ok := t.SpecialID(s); ok {
			return id
		}
	}
	return -1
}

// ErrInvalidUTF8 is returned by Encode for text that is not valid UTF-8 (HF accepts only str).
var ErrInvalidUTF8 = errors.New("tokenizer: text is not valid UTF-8")

// Encode returns the ids of text as HF encode(text, add_special_tokens=False).ids does: added
// tokens are matched in the text first, and no BOS is added.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	return t.AppendEncode(make([]int, 0, len(text)/3+4), text)
}

// AppendEncode is Encode appending to dst, for callers that reuse a buffer.
func (t *Tokenizer) AppendEncode(dst []int, text string) ([]int, error) {
	if !utf8.ValidString(text) {
		return dst, ErrInvalidUTF8
	}
	e := encoder{t: t, out: dst}
	if t.rawTrie.empty() && t.normTrie.empty() {
		e.plain(text)
		return e.out, nil
	}
	tok := func(id int32) { e.out = append(e.out, int(id)) }
	// Raw (normalized=false) tokens are found first; the text between them is then searched
	// for normalized tokens, and only what remains is pre-tokenized.
	err := t.rawTrie.split(text, 0, len(text), func(a, b int) error {
		return t.normTrie.split(text, a, b, func(a, b int) error {
			e.plain(text[a:b])
			return nil
		}, tok)
	}, tok)
	return e.out, err
}

type encoder struct {
	t    *Tokenizer
	out  []int
	ends [128]int // piece ends from the scanner
	buf  [64]int32
	sc   mergeScratch
}

// plain appends the ids of s, text without added tokens. The common cases (a one-byte piece, a
// piece in the word cache) are handled in the loop without a call: calls and taken branches are
// what Go code pays most for in WebAssembly (DESIGN.md).
func (e *encoder) plain(s string) {
	t := e.t
	c := &t.cache
	z := scanner{s: s}
	a := 0
	for {
		ends := z.next(e.ends[:0])
		if len(ends) == 0 {
			return
		}
		// A piece has at most one id per byte, so room for the batch's bytes (plus 4 for the
		// padded copy of cached ids below) is room for its ids: they are then written through
		// an index, without append's capacity check and length update per id.
		out := slices.Grow(e.out, ends[len(ends)-1]-a+4)
		w := len(out)
		out = out[:cap(out)]
		for _, b := range ends {
			n := b - a
			if n == 1 {
				if id := t.byteID[s[a]]; id >= 0 {
					out[w] = int(id)
					w++
					a = b
					continue
				}
			}
			if n <= 16 && a+16 <= len(s) {
				// The cache's first slot for a piece of up to 16 bytes (nearly all): key words
				// from two loads and a mask (keyWords), compared without a branch per field
				// (slots are never nil, see noEntry).
				m := &keyMask[n]
				w0, w1 := load64(s, a)&m[0], load64(s, a+8)&m[1]
				ce := c.slots[c.set(w0, w1, n)].Load()
				if (ce.w0^w0)|(ce.w1^w1)|uint64(len(ce.key)^n) == 0 {
					// Four ids are copied whatever the entry holds (its ids are padded to
					// four, see piece), so most entries need no loop.
					q, o := ce.ids[:4], out[w:w+4]
					o[0], o[1], o[2], o[3] = int(q[0]), int(q[1]), int(q[2]), int(q[3])
					if len(ce.ids) > 4 {
						for i, id := range ce.ids[4:] {
							out[w+4+i] = int(id)
						}
					}
					w += len(ce.ids)
					a = b
					continue
				}
			}
			// Everything else: the cache's second slot, longer pieces, pieces at the end of the
			// text, misses.
			e.out = out[:w]
			e.slowPiece(s[a:b]) // appends within the room made above
			out, w = e.out[:cap(e.out)], len(e.out)
			a = b
		}
		e.out = out[:w]
	}
}

// slowPiece appends the ids of piece p, from the cache or by merging.
func (e *encoder) slowPiece(p string) {
	var h, w0, w1 uint64
	if len(p) <= cacheMaxLen {
		c := &e.t.cache
		h, w0, w1 = c.slotOf(p)
		if ce := c.lookup(h, w0, w1, p); ce != nil {
			for _, id := range ce.ids {
				e.out = append(e.out, int(id))
			}
			return
		}
	}
	e.piece(p, h, w0, w1)
}

// piece appends the BPE ids of one pre-token that is not in the cache; h is its cache set and w0,
// w1 its key words when it is short enough to be cached.
func (e *encoder) piece(p string, h, w0, w1 uint64) {
	t := e.t
	if t.ignoreMerges {
		if id, ok := t.vocabID(byteLevel(p)); ok {
			e.out = append(e.out, id)
			return
		}
	}
	var ids []int32
	if len(p) <= len(e.buf) {
		ids = e.buf[:0]
	} else {
		ids = make([]int32, 0, len(p))
	}
	for i := 0; i < len(p); i++ {
		id := t.byteID[p[i]]
		if id < 0 {
			// HF's BPE drops a character missing from the vocabulary when there is no unk token.
			if t.unkID < 0 {
				continue
			}
			if t.fuseUnk && len(ids) > 0 && ids[len(ids)-1] == t.unkID {
				continue
			}
			id = t.unkID
		}
		ids = append(ids, id)
	}
	ids = t.pairs.merge(ids, &e.sc)
	for _, id := range ids {
		e.out = append(e.out, int(id))
	}
	if len(p) <= cacheMaxLen {
		// Clone the key: p points into the caller's text, which the cache must not keep alive.
		// The ids are padded to a capacity of four for the encoder's copy.
		t.cache.put(h, &cacheEntry{w0, w1, strings.Clone(p), append(make([]int32, 0, max(len(ids), 4)), ids...)})
	}
}

// Decode returns the text of ids as HF decode(ids, skip_special_tokens=skipSpecial) does: bytes
// that are not valid UTF-8 become U+FFFD the way Rust's String::from_utf8_lossy replaces them.
// An id outside the vocabulary is an error.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	buf := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		b, err := t.appendToken(buf, id, skipSpecial)
		if err != nil {
			return "", err
		}
		buf = b
	}
	return string(appendLossy(nil, buf)), nil
}

func (t *Tokenizer) appendToken(buf []byte, id int, skipSpecial bool) ([]byte, error) {
	if id < 0 || id >= len(t.idTok) || !t.used[id] {
		return buf, fmt.Errorf("tokenizer: unknown token id %d", id)
	}
	if skipSpecial && t.skip[id] {
		return buf, nil
	}
	return append(buf, t.dec[t.decOff[id]:t.decOff[id+1]]...), nil
}

// IDToToken returns the token string of id (an added token's content, or the ByteLevel-encoded
// vocabulary entry).
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if id < 0 || id >= len(t.idTok) || !t.used[id] {
		return "", false
	}
	return t.idTok[id], true
}

// TokenToID returns the id of a token string; added tokens take precedence as in HF.
func (t *Tokenizer) TokenToID(s string) (int, bool) {
	if id, ok := t.added[s]; ok {
		return id, true
	}
	return t.vocabID(s)
}

// vocabID looks s up in the model vocabulary.
func (t *Tokenizer) vocabID(s string) (int, bool) { return t.vocab.get(t.vocabKeys, s) }

// VocabSize is HF len(tokenizer): model vocabulary plus added tokens not already in it.
func (t *Tokenizer) VocabSize() int {
	n := t.modelSize
	for s := range t.added {
		if _, ok := t.vocabID(s); !ok {
			n++
		}
	}
	return n
}

// IDLimit returns the largest id plus one: the rows an embedding table needs (it can exceed
// VocabSize when ids have gaps).
func (t *Tokenizer) IDLimit() int { return len(t.idTok) }

// SpecialID returns the id of the added token with content name flagged special.
func (t *Tokenizer) SpecialID(name string) (int, bool) {
	if !t.special[name] {
		return 0, false
	}
	return t.added[name], true
}

// IsSpecial reports whether id is a special added token (what Decode's skipSpecial drops).
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.skip) && t.skip[id]
}

// BOS returns the id of the beginning-of-sequence special token of the file
// (<｜begin▁of▁sentence｜> in DeepSeek's), if it has one. Encode never adds it.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the id of the end-of-sequence special token of the file
// (<｜end▁of▁sentence｜> in DeepSeek's), if it has one.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }
