package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// The three Split patterns of DeepSeek's pre-tokenizer, byte for byte as they appear in
// tokenizer.json. Load accepts exactly this sequence; the scanners below implement it.
const (
	patDigits = `\p{N}{1,3}`
	patCJK    = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
	patMain   = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
)

// Character class bits as Oniguruma sees them (see classes_extra.go for the Unicode version gap).
const (
	cL     uint8 = 1 << iota // \p{L}
	cM                       // \p{M}
	cN                       // \p{N}
	cP                       // \p{P}
	cS                       // \p{S}
	cSpace                   // \s (Unicode White_Space, same set as unicode.IsSpace)
	cCRLF                    // \r or \n
	cCJK                     // [一-龥぀-ゟ゠-ヿ]
)

// asciiClass is precomputed because almost all source code and much prose is ASCII.
var asciiClass = func() (t [128]uint8) {
	for r := rune(0); r < 128; r++ {
		t[r] = slowClass(r)
	}
	return t
}()

func slowClass(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r) || unicode.Is(extraL, r):
		c |= cL
	case unicode.IsMark(r) || unicode.Is(extraM, r):
		c |= cM
	case unicode.IsNumber(r) || unicode.Is(extraN, r):
		c |= cN
	case unicode.IsPunct(r) || unicode.Is(extraP, r):
		c |= cP
	case unicode.IsSymbol(r) || unicode.Is(extraS, r):
		c |= cS
	}
	if unicode.IsSpace(r) {
		c |= cSpace
	}
	if r == '\r' || r == '\n' {
		c |= cCRLF
	}
	if (r >= 0x4E00 && r <= 0x9FA5) || (r >= 0x3040 && r <= 0x30FF) {
		c |= cCJK
	}
	return c
}

// bmpClass caches the classes of the Basic Multilingual Plane (64 KiB, built on first use) so
// that CJK, Cyrillic or Arabic text does not pay for binary searches in the Unicode tables.
var (
	bmpOnce  sync.Once
	bmpTable *[0x10000]uint8
)

func bmpClass() *[0x10000]uint8 {
	bmpOnce.Do(func() {
		t := new([0x10000]uint8)
		for r := range rune(0x10000) {
			t[r] = slowClass(r)
		}
		bmpTable = t
	})
	return bmpTable
}

// classAt decodes the rune at s[i] (s is valid UTF-8) and returns its class bits and width.
func classAt(s string, i int) (uint8, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r < 0x10000 {
		return bmpClass()[r], n
	}
	return slowClass(r), n
}

// preTokenize splits s (valid UTF-8, no added tokens) exactly like DeepSeek's pre-tokenizer
// Sequence: Split \p{N}{1,3}, then Split on CJK/kana runs, then Split on the main alternation, all
// "Isolated" (matches and the gaps between them both become pieces). emit receives byte ranges
// of s in order; together they cover s.
func preTokenize(s string, emit func(a, b int)) {
	// Stage 1: runs of \p{N} are cut into chunks of at most three code points. A chunk holds only
	// \p{N}, which neither later pattern can split, so chunks are final pieces.
	gap := 0
	i := 0
	for i < len(s) {
		c, n := classAt(s, i)
		if c&cN == 0 {
			i += n
			continue
		}
		if gap < i {
			splitCJK(s, gap, i, emit)
		}
		start := i
		cnt := 0
		for i < len(s) {
			c, n = classAt(s, i)
			if c&cN == 0 {
				break
			}
			i += n
			cnt++
			if cnt == 3 {
				emit(start, i)
				start, cnt = i, 0
			}
		}
		if start < i {
			emit(start, i)
		}
		gap = i
	}
	if gap < len(s) {
		splitCJK(s, gap, len(s), emit)
	}
}

// splitCJK is stage 2: runs of CJK/kana become pieces; runs and gaps both go on to stage 3
// because the kana blocks contain punctuation and symbols (゠ ・ ゛) that stage 3 separates.
func splitCJK(s string, a, b int, emit func(a, b int)) {
	gap := a
	i := a
	for i < b {
		c, n := classAt(s, i)
		if c&cCJK == 0 {
			i += n
			continue
		}
		if gap < i {
			splitMain(s, gap, i, emit)
		}
		start := i
		for i < b {
			c, n = classAt(s, i)
			if c&cCJK == 0 {
				break
			}
			i += n
		}
		splitMain(s, start, i, emit)
		gap = i
	}
	if gap < b {
		splitMain(s, gap, b, emit)
	}
}

// splitMain is stage 3: leftmost-first search of the main alternation over s[a:b]; matches and
// unmatched gaps become pieces.
func splitMain(s string, a, b int, emit func(a, b int)) {
	gap := a
	i := a
	for i < b {
		e, n := matchMain(s, i, b)
		if e < 0 {
			i += n
			continue
		}
		if gap < i {
			emit(gap, i)
		}
		emit(i, e)
		i, gap = e, e
	}
	if gap < b {
		emit(gap, b)
	}
}

func isASCIIPunct(c byte) bool {
	return c < 128 && asciiClass[c]&(cP|cS) != 0
}

func isASCIILetter(c byte) bool {
	return (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

// skipClass returns the end of the run of code points starting at i whose class has a bit of mask.
func skipClass(s string, i, b int, mask uint8) int {
	for i < b {
		c, n := classAt(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// matchMain tries the main alternation anchored at i, alternatives in order, as a backtracking
// engine would. It returns the match end, or -1 and the width of the rune at i when nothing matches.
func matchMain(s string, i, b int) (int, int) {
	c0, n0 := classAt(s, i)
	// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : the class is all 32 ASCII punctuation marks.
	if isASCIIPunct(s[i]) && i+1 < b && isASCIILetter(s[i+1]) {
		j := i + 2
		for j < b && isASCIILetter(s[j]) {
			j++
		}
		return j, n0
	}
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : greedy optional prefix first, then without it.
	if c0&(cCRLF|cL|cP|cS) == 0 && i+n0 < b {
		if c1, _ := classAt(s, i+n0); c1&(cL|cM) != 0 {
			return skipClass(s, i+n0, b, cL|cM), n0
		}
	}
	if c0&(cL|cM) != 0 {
		return skipClass(s, i, b, cL|cM), n0
	}
	// " ?[\p{P}\p{S}]+[\r\n]*" : only U+0020 is the optional space.
	p := i
	if s[i] == ' ' {
		p++
	}
	if p < b {
		if c, _ := classAt(s, p); c&(cP|cS) != 0 {
			j := skipClass(s, p, b, cP|cS)
			for j < b && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j, n0
		}
	}
	if c0&cSpace == 0 {
		return -1, n0
	}
	// Whitespace run [i, e); last is the start of its final code point, nl one past its last \r|\n.
	e, last, nl := i, i, -1
	for e < b {
		c, n := classAt(s, e)
		if c&cSpace == 0 {
			break
		}
		if c&cCRLF != 0 {
			nl = e + 1
		}
		last = e
		e += n
	}
	// \s*[\r\n]+ : \s* backs off to the last newline, and [\r\n]+ then ends right after it.
	if nl >= 0 {
		return nl, n0
	}
	// \s+(?!\S) : the whole run at the end of the piece, else the run minus its last code point.
	if e == b || last == i {
		// \s+ (the run is a single code point followed by non-space).
		return e, n0
	}
	return last, n0
}
