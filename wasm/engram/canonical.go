package engram

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Vocabulary is what the canonical-id map needs from a tokenizer; the
// wasm/tokenizer package implements it.
type Vocabulary interface {
	// VocabSize is the number of token ids, added tokens included.
	VocabSize() int
	// Decode turns ids into text; invalid UTF-8 must come out as U+FFFD
	// (as Hugging Face tokenizers do).
	Decode(ids []int, skipSpecial bool) (string, error)
	// IDToToken returns the raw vocabulary string of an id.
	IDToToken(id int) (string, bool)
}

// Normalize applies the Engram key normalizer (spec §4.2): NFKC, NFD,
// strip accents, lowercase, collapse runs of
// [ \t\r\n] to one space, then strip surrounding whitespace — except that
// a string that is exactly one space stays one space. Strip accents drops
// every mark (Mn, Mc and Me), as the tokenizers StripAccents normalizer
// does: dropping only Mn mismatches 117k DeepSeek-V3 tokens (Bengali and
// other Mc vowel signs shift the first-appearance order).
func Normalize(s string) string {
	s = norm.NFKC.String(s)
	s = norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(s))
	inWS := false
	for _, r := range s {
		if unicode.Is(unicode.M, r) { // Mn, Mc and Me, like HF StripAccents
			continue
		}
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			if !inWS {
				b.WriteByte(' ')
			}
			inWS = true
			continue
		}
		inWS = false
		lowerInto(&b, r)
	}
	s = b.String()
	if s == " " {
		return s
	}
	return strings.TrimFunc(s, unicode.IsSpace)
}

// lowerInto writes the lowercase of r the way Rust's char::to_lowercase
// (used by the tokenizers Lowercase normalizer) does: per character, with
// U+0130 the one unconditional multi-character mapping.
func lowerInto(b *strings.Builder, r rune) {
	if r == 'İ' {
		b.WriteString("i\u0307")
		return
	}
	b.WriteRune(unicode.ToLower(r))
}

// CanonicalMap assigns every token id its compressed (canonical) id: the
// decoded text of the token alone, normalized; the raw vocabulary string
// when the decoded text holds U+FFFD (a partial UTF-8 token); the decoded
// text itself when normalization leaves nothing. Ids are given in order of
// first appearance. It returns the map and the number of canonical ids.
func CanonicalMap(v Vocabulary) ([]int32, int, error) {
	if v == nil {
		return nil, 0, errors.New("engram: nil vocabulary")
	}
	n := v.VocabSize()
	if n <= 0 || n > 1<<31-1 {
		return nil, 0, fmt.Errorf("engram: invalid vocabulary size %d", n)
	}
	canon := make([]int32, n)
	seen := make(map[string]int32, n)
	for t := range n {
		text, err := v.Decode([]int{t}, false)
		if err != nil {
			return nil, 0, fmt.Errorf("engram: decode token %d: %w", t, err)
		}
		key := text
		if strings.ContainsRune(text, '\uFFFD') {
			raw, ok := v.IDToToken(t)
			if !ok {
				return nil, 0, fmt.Errorf("engram: token %d has no vocabulary string", t)
			}
			key = raw
		} else if k := Normalize(text); k != "" {
			key = k
		}
		id, ok := seen[key]
		if !ok {
			id = int32(len(seen))
			seen[key] = id
		}
		canon[t] = id
	}
	return canon, len(seen), nil
}
