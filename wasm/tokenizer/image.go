package tokenizer

import (
	"encoding/binary"
	"slices"
	"unicode"
)

// Image format: see IMAGE.md. A module that tokenizes without parsing tokenizer.json (the C
// tokenizer, wasm/plugins/tokenizer) loads this instead; everything Encode depends on is in it,
// and nothing else.
const (
	imageMagic   = "ESTI"
	imageVersion = 1

	imageIgnoreMerges = 1 << 0
	imageFuseUnk      = 1 << 1

	imageNone = ^uint32(0) // no id
)

// AppendImage appends the tokenizer's encoding tables in the binary form of IMAGE.md to dst:
// what Encode needs (byte ids, merges, added tokens, the unknown token, the pre-tokenizer's
// character classes), not what decoding needs. Encode of the image by a faithful reader gives
// exactly Encode's ids.
func (t *Tokenizer) AppendImage(dst []byte) []byte {
	start := len(dst)
	u32 := func(v uint32) { dst = binary.LittleEndian.AppendUint32(dst, v) }
	bytesPadded := func(b string) {
		u32(uint32(len(b)))
		dst = append(dst, b...)
		for (len(dst)-start)%4 != 0 {
			dst = append(dst, 0)
		}
	}
	dst = append(dst, imageMagic...)
	u32(imageVersion)
	var flags uint32
	if t.ignoreMerges {
		flags |= imageIgnoreMerges
	}
	if t.fuseUnk {
		flags |= imageFuseUnk
	}
	u32(flags)
	u32(uint32(t.unkID)) // -1 is imageNone
	for _, id := range t.byteID {
		u32(uint32(id))
	}

	// Merges, in table order: pairs are unique in the table (a later duplicate replaced the
	// earlier one while loading).
	var pairs int
	if t.pairs != nil {
		pairs = t.pairs.count
	}
	u32(uint32(pairs))
	if t.pairs != nil {
		kv := t.pairs.kv
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == emptyKey {
				continue
			}
			u32(uint32(kv[i] >> 32))
			u32(uint32(kv[i]))
			u32(uint32(kv[i+1] >> 32))
			u32(uint32(kv[i+1]))
		}
	}

	for _, tr := range []*addedTrie{t.rawTrie, t.normTrie} {
		toks := tr.tokens()
		u32(uint32(len(toks)))
		for _, tk := range toks {
			u32(uint32(tk.id))
			bytesPadded(tk.s)
		}
	}

	// With ignore_merges a piece that is a whole vocabulary entry is that entry: the entries as
	// the raw bytes a piece would have (tokens with a character outside the byte map can never
	// match and are left out).
	if !t.ignoreMerges || t.vocab == nil {
		u32(0)
	} else {
		type entry struct {
			id  int32
			raw string
		}
		var es []entry
		for e, sp := range t.vocab.span {
			if raw, ok := rawBytes(t.vocabKeys[uint32(sp) : sp>>32]); ok {
				es = append(es, entry{t.vocab.ids[e], raw})
			}
		}
		u32(uint32(len(es)))
		for _, e := range es {
			u32(uint32(e.id))
			bytesPadded(e.raw)
		}
	}

	dst = append(dst, classTable()[:]...)
	high := highClassRanges()
	u32(uint32(len(high)))
	for _, r := range high {
		u32(uint32(r.lo))
		u32(uint32(r.hi))
		u32(uint32(r.class))
	}
	return dst
}

// rawBytes inverts ByteLevel: the bytes whose ByteLevel string is tok, or false when a character
// of tok is outside the byte map.
func rawBytes(tok string) (string, bool) {
	b := make([]byte, 0, len(tok))
	for _, r := range tok {
		if r >= rune(len(runeToByte)) || runeToByte[r] < 0 {
			return "", false
		}
		b = append(b, byte(runeToByte[r]))
	}
	return string(b), true
}

type addedToken struct {
	s  string
	id int32
}

// tokens lists the trie's tokens in byte order.
func (t *addedTrie) tokens() []addedToken {
	var out []addedToken
	var walk func(n int32, prefix []byte)
	walk = func(n int32, prefix []byte) {
		if id := t.nodes[n].id; id >= 0 {
			out = append(out, addedToken{string(prefix), id})
		}
		for _, e := range t.nodes[n].edges {
			walk(e.next, append(prefix, e.b))
		}
	}
	walk(0, nil)
	return out
}

type classRange struct {
	lo, hi rune
	class  uint8
}

// highClassRanges lists the class bits of the code points above the class table
// (U+20000–U+10FFFF) as maximal runs of equal non-zero classes. Membership in every table
// slowClass consults is constant between the bounds of those tables' ranges, so slowClass is
// evaluated once per interval rather than for a million code points.
func highClassRanges() []classRange {
	bounds := []rune{tableRunes, unicode.MaxRune + 1}
	for _, rt := range []*unicode.RangeTable{unicode.L, unicode.M, unicode.N, unicode.P, unicode.S,
		unicode.White_Space, extraL, extraM, extraN, extraP, extraS} {
		for _, r := range rt.R32 {
			lo, hi := rune(r.Lo), rune(r.Hi)
			if hi < tableRunes {
				continue
			}
			if r.Stride == 1 {
				bounds = append(bounds, max(lo, tableRunes), hi+1)
				continue
			}
			for x := lo; x <= hi; x += rune(r.Stride) {
				if x >= tableRunes {
					bounds = append(bounds, x, x+1)
				}
			}
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	var out []classRange
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]-1
		c := slowClass(lo)
		if c == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].class == c && out[n-1].hi+1 == lo {
			out[n-1].hi = hi
			continue
		}
		out = append(out, classRange{lo, hi, c})
	}
	return out
}
